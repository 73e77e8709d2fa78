// mheap: see mheap.h.
#include "alloc/mheap.h"

#include <cinttypes>
#include <cstring>
#include <new>

#include "alloc/poison.h"
#include "os/bits.h"
#include "gc/thread.h"
#include "trace/log.h"

namespace tricolor::internal {

HeapArena** mheap::arena_map_ = nullptr;

// Never destroyed: background threads may still use the heap while the process exits.
mheap& heap() {
  static mheap* h = new mheap();
  return *h;
}

void mheap::init() {
  if (!arena_map_) {
    arena_map_ = static_cast<HeapArena**>(os_reserve_zeroed(kArenaMapEntries * sizeof(HeapArena*)));
    TRICOLOR_CHECK(arena_map_ != nullptr, "cannot reserve the arena map");
  }
  for (int i = 0; i < kNumSpanClasses; i++) central_[i].init(static_cast<SpanClass>(i));
  sweepgen.store(2, std::memory_order_relaxed);
}

void mheap::destroy() {
  std::lock_guard<SpinMutex> g(lock_);
  // Every struct, pooled ones included (the mcaches gave their page caches back when their
  // threads detached).
  for (mspan* s : all_spans_) {
    span_release_bits(s);
    delete s;
  }
  all_spans_.clear();
  span_pool_.clear();
  // Free each page-source chunk once (a chunk may hold several arenas).
  for (HeapArena* a : arenas_) arena_map_[a->base >> kArenaShift] = nullptr;
  for (HeapArena* a : arenas_)
    if (a->base == a->chunk_base) {
      unpoison_for_reuse(a->chunk_base, a->chunk_bytes);  // leaves the heap (alloc/poison.h)
      os_arena_free(reinterpret_cast<void*>(a->chunk_base), a->chunk_bytes);
    }
  for (HeapArena* a : arenas_) os_unreserve(a, sizeof(HeapArena));
  arenas_.clear();
  for (HeapArena* a : arena_pool_) os_unreserve(a, sizeof(HeapArena));
  arena_pool_.clear();
  runs_by_addr_.clear();
  runs_by_size_.clear();
  counters.heap_sys.store(0);
  counters.pages_inuse.store(0);
  counters.heap_released.store(0);
  counters.span_structs.store(0);
  for (int i = 0; i < kNumSpanClasses; i++) new (&central_[i]) mcentral();
  for (int i = 0; i < kNumSpanClasses; i++) central_[i].init(static_cast<SpanClass>(i));
}

template <class F>
void mheap::for_page_words(uintptr_t addr, size_t npages, F f) {
  // Pieces end at a bitmap word's end, and so at an arena's (a free run may cross into a
  // neighbouring arena).
  for (size_t k = 0; k < npages;) {
    uintptr_t p = addr + k * kPageSize;
    HeapArena* a = arena_of(p);
    size_t i = (p >> kPageShift) % kPagesPerArena, off = i % 64;
    size_t n = std::min<size_t>(64 - off, npages - k);
    f(a, i / 64, off, k, (n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1) << off);
    k += n;
  }
}

void mheap::add_run_locked(uintptr_t addr, size_t npages, uint64_t freed_ns) {
  runs_by_addr_.emplace(addr, FreeRun{npages, freed_ns});
  runs_by_size_.emplace(npages, addr);
}

void mheap::insert_run(uintptr_t addr, size_t npages, uint64_t freed_ns) {
  // Coalesce with the neighbours (address order). A run that joins a neighbour takes over
  // that neighbour's index nodes (reset_run), so that only a run with no free neighbour
  // costs two node allocations: a page cache's flush, whose pages mostly border the run
  // it was filled from, and the sweep's frees took two allocations and two frees each.
  auto next = runs_by_addr_.lower_bound(addr);
  auto prev = next == runs_by_addr_.begin() ? runs_by_addr_.end() : std::prev(next);
  bool join_prev = prev != runs_by_addr_.end() && prev->first + prev->second.npages * kPageSize == addr;
  bool join_next = next != runs_by_addr_.end() && addr + npages * kPageSize == next->first;
  if (join_next) {
    npages += next->second.npages;
    freed_ns = std::max(freed_ns, next->second.freed_ns);
  }
  if (join_prev) {
    if (join_next) erase_run(next);
    reset_run(prev, prev->first, prev->second.npages + npages,
              std::max(freed_ns, prev->second.freed_ns));
  } else if (join_next) {
    reset_run(next, addr, npages, freed_ns);
  } else {
    runs_by_addr_.emplace_hint(next, addr, FreeRun{npages, freed_ns});
    runs_by_size_.emplace(npages, addr);
  }
}

void mheap::reset_run(std::map<uintptr_t, FreeRun>::iterator it, uintptr_t addr, size_t npages,
                      uint64_t freed_ns) {
  // The nodes are re-keyed, not freed and allocated again. The new address keeps the run's
  // place in address order (the callers move a run's start within the gap before the next).
  auto sn = runs_by_size_.extract({it->second.npages, it->first});
  sn.value() = {npages, addr};
  runs_by_size_.insert(std::move(sn));
  if (addr != it->first) {
    auto hint = std::next(it);
    auto an = runs_by_addr_.extract(it);
    an.key() = addr;
    an.mapped() = FreeRun{npages, freed_ns};
    runs_by_addr_.insert(hint, std::move(an));
  } else {
    it->second = FreeRun{npages, freed_ns};
  }
}

void mheap::erase_run(std::map<uintptr_t, FreeRun>::iterator it) {
  runs_by_size_.erase({it->second.npages, it->first});
  runs_by_addr_.erase(it);
}

uintptr_t mheap::alloc_pages(size_t npages) {
  // Best fit, lowest address among equals: keeps the heap compact like Go's
  // address-ordered first fit.
  auto it = runs_by_size_.lower_bound({npages, 0});
  if (it == runs_by_size_.end()) return 0;
  uintptr_t addr = it->second;
  auto rit = runs_by_addr_.find(addr);
  if (rit->second.npages == npages) {
    erase_run(rit);
    return addr;
  }
  // Split: the rest keeps both index nodes, re-keyed (no node freed and allocated again:
  // most span allocations split a run).
  uintptr_t rest = addr + npages * kPageSize;
  size_t left = rit->second.npages - npages;
  auto hint = std::next(rit);
  auto an = runs_by_addr_.extract(rit);
  an.key() = rest;
  an.mapped().npages = left;
  runs_by_addr_.insert(hint, std::move(an));  // the same place in address order
  auto sn = runs_by_size_.extract(it);
  sn.value() = {left, rest};
  runs_by_size_.insert(std::move(sn));
  return addr;
}

namespace {
std::atomic<void (*)()> g_grow_hook{nullptr};  // test_set_grow_hook
}  // namespace

void test_set_grow_hook(void (*fn)()) { g_grow_hook.store(fn, std::memory_order_release); }

void mheap::add_arenas(void* mem, size_t bytes) {
  uintptr_t base = reinterpret_cast<uintptr_t>(mem);
  TRICOLOR_CHECK((base & (kArenaBytes - 1)) == 0, "arena not aligned");
  for (uintptr_t a = base; a < base + bytes; a += kArenaBytes) {
    HeapArena* ha;
    if (!arena_pool_.empty()) {
      ha = arena_pool_.back();  // page map all null, bitmaps cleared on release
      arena_pool_.pop_back();
    } else {
      ha = static_cast<HeapArena*>(os_reserve_zeroed(sizeof(HeapArena)));
      TRICOLOR_CHECK(ha != nullptr, "cannot reserve arena metadata");
    }
    ha->base = a;
    ha->chunk_base = base;
    ha->chunk_bytes = bytes;
    arenas_.push_back(ha);
    // Release: the metadata is initialised before lock-free readers can find it.
    __atomic_store_n(&arena_map_[a >> kArenaShift], ha, __ATOMIC_RELEASE);
  }
  // The chunk's first page holds no object (kChunkHeadBytes): its free pages start after it.
  // They are new from the OS: released, as Go counts a heap's new memory (HeapReleased), so
  // that the spans on them know their pages may not be resident yet (mspan::fresh).
  for_page_words(base + kChunkHeadBytes, (bytes - kChunkHeadBytes) / kPageSize,
                 [](HeapArena* a, size_t w, unsigned, size_t, uint64_t mask) { a->scavenged[w] |= mask; });
  counters.heap_released.fetch_add(bytes - kChunkHeadBytes, std::memory_order_relaxed);
  counters.heap_sys.fetch_add(bytes - kChunkHeadBytes, std::memory_order_relaxed);
  insert_run(base + kChunkHeadBytes, (bytes - kChunkHeadBytes) / kPageSize, 0);
}

uintptr_t mheap::alloc_pages_or_grow(std::unique_lock<SpinMutex>& g, size_t npages) {
  if (uintptr_t addr = alloc_pages(npages)) return addr;
  // Growing takes new arenas from the OS, 60-90 us for 64 MiB (mimalloc maps them and
  // MADV_DONTNEED drops them). That runs without the heap lock and inside a collector
  // wait: a stop of the world neither waits for it (it was most of the longest pauses of
  // churn as its heap grew) nor finds the lock held. Two threads may both grow; the
  // second arena is simply more free pages.
  size_t bytes = (npages * kPageSize + kChunkHeadBytes + kArenaBytes - 1) & ~(kArenaBytes - 1);
  g.unlock();
  collector_wait_begin();
  // Acquire: pairs with test_set_grow_hook's release store.
  if (auto hook = g_grow_hook.load(std::memory_order_acquire)) hook();
  void* mem = os_arena_alloc(bytes);
  collector_wait_end();
  g.lock();
  if (!mem) return 0;
  add_arenas(mem, bytes);
  return alloc_pages(npages);
}

mspan* mheap::new_span_locked() {
  if (!span_pool_.empty()) {
    mspan* s = span_pool_.back();
    span_pool_.pop_back();
    return s;
  }
  mspan* s = new mspan();
  all_spans_.push_back(s);
  counters.span_structs.fetch_add(1, std::memory_order_relaxed);
  return s;
}

void mheap::setup_span(mspan* s, uintptr_t addr, size_t npages, SpanClass sc, bool dirty,
                       bool fresh) {
  span_init(s, addr, npages, sc, sweepgen.load(std::memory_order_relaxed));
  unpoison_for_reuse(addr, npages * kPageSize);  // stress + ASan builds (alloc/poison.h)
  s->needzero = dirty;
  s->fresh = fresh;
  // Release: for_each_span and span_of readers see the span set up.
  s->state.store(SpanState::kInUse, std::memory_order_release);
  set_span_map(addr, npages, s);  // publish: span set up first
}

void mheap::set_span_map(uintptr_t addr, size_t npages, mspan* s) {
  // An arena's stretch at a time (a span may cross into the next arena of its chunk): the
  // stores of a large span's pages, one arena lookup each, were a fifth of the instructions
  // of a 100 KiB allocation.
  uintptr_t end = addr + npages * kPageSize;
  while (addr < end) {
    HeapArena* a = arena_of(addr);
    size_t i = (addr >> kPageShift) % kPagesPerArena;
    size_t n = std::min(kPagesPerArena - i, (end - addr) / kPageSize);
    for (size_t k = 0; k < n; k++) a->spans[i + k].store(s, std::memory_order_release);
    addr += n * kPageSize;
  }
}

static_assert(kPagesPerArena % 64 == 0, "an arena's page bitmaps end at a word's end");

template <class F>
void mheap::clear_page_bits(uintptr_t addr, size_t npages, F f) {
  // A word of each bitmap at a time, not a page at a time: a page cache's refill clears 64
  // pages here with the heap lock held.
  size_t released = 0;
  for_page_words(addr, npages, [&](HeapArena* a, size_t w, unsigned off, size_t k, uint64_t mask) {
    uint64_t d = a->dirty[w] & mask, r = a->scavenged[w] & mask;
    a->dirty[w] &= ~mask;
    a->scavenged[w] &= ~mask;
    released += size_t(__builtin_popcountll(r));
    f(k, d >> off, r >> off);
  });
  if (released) counters.heap_released.fetch_sub(released * kPageSize, std::memory_order_relaxed);
}

void mheap::take_page_bits(uintptr_t addr, size_t npages, uint64_t* dirty, uint64_t* scav) {
  *dirty = *scav = 0;
  clear_page_bits(addr, npages, [&](size_t k, uint64_t d, uint64_t r) {
    *dirty |= d << k;
    *scav |= r << k;
  });
}

void mheap::flush_page_cache_locked(PageCache* pc) {
  uint64_t now = pc->free ? monotonic_ns() : 0;
  // Each maximal run of free pages goes back as one free run, with its pages' bits.
  for_each_bit_run(pc->free, [&](unsigned i, unsigned n) {
    uintptr_t addr = pc->base + i * kPageSize;
    // A bitmap word at a time, as clear_page_bits takes them.
    uint64_t dirty = pc->dirty >> i, scav = pc->scav >> i;  // bit j: page i + j
    for_page_words(addr, n, [&](HeapArena* a, size_t w, unsigned off, size_t k, uint64_t mask) {
      a->dirty[w] |= ((dirty >> k) << off) & mask;
      a->scavenged[w] |= ((scav >> k) << off) & mask;
    });
    uint64_t mask = (n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1) << i;
    if (pc->scav & mask)
      counters.heap_released.fetch_add(uint64_t(__builtin_popcountll(pc->scav & mask)) * kPageSize,
                                       std::memory_order_relaxed);
    insert_run(addr, n, now);
  });
  pc->base = 0;
  pc->free = pc->dirty = pc->scav = 0;
  for (int i = 0; i < pc->nspans; i++) span_pool_.push_back(pc->spans[i]);
  pc->nspans = 0;
}

void mheap::flush_page_cache(PageCache* pc) {
  if (!pc->free && !pc->nspans) return;
  std::lock_guard<SpinMutex> g(lock_);
  flush_page_cache_locked(pc);
}

void mheap::fill_page_cache_locked(PageCache* pc, size_t npages, std::unique_lock<SpinMutex>& g) {
  // Go's pageCache takes the free pages of the lowest-addressed 64-page chunk that has any
  // (address-ordered first fit), which reuses the holes that freed spans leave low in the
  // heap. Here: the window of kPages pages from the lowest free run long enough for the
  // request (a bounded scan; past it, the best-fitting run), with every free page inside
  // the window, holes between in-use spans included. Taking 64 contiguous pages instead
  // (best fit for 64) left those holes unused and spread the heap over fresh pages:
  // GCBench's peak RSS grew from 37-40 to 43-47 MiB.
  constexpr int kScanRuns = 32;
  auto it = runs_by_addr_.begin();
  for (int budget = kScanRuns; it != runs_by_addr_.end() && it->second.npages < npages; ++it)
    if (--budget == 0) {
      it = runs_by_addr_.end();
      break;
    }
  if (it == runs_by_addr_.end()) {
    auto fit = runs_by_size_.lower_bound({npages, 0});
    if (fit == runs_by_size_.end()) {
      // Nothing fits: the heap grows, and the cache takes kPages of the new arena.
      uintptr_t addr = alloc_pages_or_grow(g, PageCache::kPages);
      if (!addr) return;  // out of memory: the cache stays empty
      pc->base = addr;
      pc->free = ~uint64_t{0};
      take_page_bits(addr, PageCache::kPages, &pc->dirty, &pc->scav);
      return;
    }
    it = runs_by_addr_.find(fit->second);
  }
  uintptr_t base = it->first;
  uintptr_t limit = base + PageCache::kPages * kPageSize;
  pc->base = base;
  pc->free = pc->dirty = pc->scav = 0;
  while (it != runs_by_addr_.end() && it->first < limit) {
    uintptr_t addr = it->first;
    size_t n = it->second.npages;
    uint64_t freed_ns = it->second.freed_ns;
    size_t take = std::min(n, (limit - addr) / kPageSize);
    auto next = std::next(it);
    // The part past the window stays free, in the run's own index nodes (its key lies
    // before `next`: runs never touch).
    if (take < n) reset_run(it, addr + take * kPageSize, n - take, freed_ns);
    else erase_run(it);
    uint64_t dirty, scav;
    take_page_bits(addr, take, &dirty, &scav);
    unsigned shift = static_cast<unsigned>((addr - base) / kPageSize);
    uint64_t bits = take == 64 ? ~uint64_t{0} : (uint64_t{1} << take) - 1;
    pc->free |= bits << shift;
    pc->dirty |= dirty << shift;
    pc->scav |= scav << shift;
    it = next;
  }
}

mspan* mheap::alloc_span(size_t npages, SpanClass sc, bool* needzero, PageCache* pc) {
  // The pages are counted in use before they are taken, so that threads taking spans at
  // once (the page caches take theirs without the lock) never pass the memory limit
  // together. Relaxed: the limit is a setting; a stale read only delays its effect by one
  // span.
  uint64_t limit = limit_bytes.load(std::memory_order_relaxed);
  uint64_t inuse = counters.pages_inuse.load(std::memory_order_relaxed);
  do {
    if ((inuse + npages) * kPageSize > limit) return nullptr;
  } while (!counters.pages_inuse.compare_exchange_weak(inuse, inuse + npages, std::memory_order_relaxed));
  mspan* s = take_span(npages, sc, needzero, pc);
  if (!s) counters.pages_inuse.fetch_sub(npages, std::memory_order_relaxed);
  return s;
}

// The bits i of `free` that start a run of n set bits (i .. i+n-1), n >= 1: in log2(n) steps
// (runs of 2k from runs of k), where a shift per page took a fifth of a 13-page span's
// page-cache allocation.
static uint64_t run_starts(uint64_t free, size_t n) {
  uint64_t f = free;
  size_t have = 1;  // f: the starts of runs of `have` bits
  while (have * 2 <= n) {
    f &= f >> have;
    have *= 2;
  }
  // Two runs of `have` that overlap cover n (n - have < have).
  if (have < n) f &= f >> (n - have);
  return f;
}

mspan* mheap::take_span(size_t npages, SpanClass sc, bool* needzero, PageCache* pc) {
  if (pc && npages <= PageCache::kMaxSpanPages) {
    // Go's pageCache.alloc: the first npages free pages in a row, lowest first.
    uint64_t fit = run_starts(pc->free, npages);
    if (!fit || pc->nspans == 0) {
      std::unique_lock<SpinMutex> g(lock_);
      if (!fit) {
        flush_page_cache_locked(pc);
        fill_page_cache_locked(pc, npages, g);
        fit = run_starts(pc->free, npages);
        if (!fit) return nullptr;  // out of memory
      }
      while (pc->nspans < PageCache::kSpans) pc->spans[pc->nspans++] = new_span_locked();
    }
    unsigned i = static_cast<unsigned>(__builtin_ctzll(fit));
    uint64_t mask = ((uint64_t{1} << npages) - 1) << i;
    bool dirty = (pc->dirty & mask) != 0;
    bool fresh = (pc->scav & mask) != 0;
    pc->free &= ~mask;
    pc->dirty &= ~mask;
    pc->scav &= ~mask;
    mspan* s = pc->spans[--pc->nspans];
    setup_span(s, pc->base + i * kPageSize, npages, sc, dirty, fresh);
    *needzero = dirty;
    return s;
  }
  std::unique_lock<SpinMutex> g(lock_);
  uintptr_t addr = alloc_pages_or_grow(g, npages);
  if (!addr) return nullptr;
  // Pages that held objects must be zeroed; released pages read as zero.
  bool dirty = false, fresh = false;
  clear_page_bits(addr, npages, [&](size_t, uint64_t d, uint64_t r) {
    dirty |= d != 0;
    fresh |= r != 0;
  });
  mspan* s = new_span_locked();
  setup_span(s, addr, npages, sc, dirty, fresh);
  *needzero = dirty;
  return s;
}

void mheap::retire_span(mspan* s) {
  s->state.store(SpanState::kDead, std::memory_order_release);
  poison_freed(s->start, s->npages * kPageSize);  // stress builds (alloc/poison.h)
  set_span_map(s->start, s->npages, nullptr);
  counters.pages_inuse.fetch_sub(s->npages, std::memory_order_release);
}

void mheap::free_span(mspan* s, PageCache* pc, bool zeroed) {
  // A span inside the freeing thread's page-cache window goes back to that cache, whose
  // owner is the caller: no lock, and the thread's next spans reuse the pages it swept,
  // still in its CPU's caches, where the heap's lowest-first order would walk the cache
  // through its 64 pages. The pages were in use, so neither the heap's free runs nor
  // another cache holds them. (Go frees every span to the page heap; mimalloc reuses a
  // thread's freed pages first.)
  uintptr_t end = s->start + s->npages * kPageSize;
  if (pc && pc->base && s->npages <= PageCache::kMaxSpanPages && s->start >= pc->base &&
      end <= pc->base + PageCache::kPages * kPageSize) {
    retire_span(s);
    unsigned i = static_cast<unsigned>((s->start - pc->base) / kPageSize);
    uint64_t mask = ((uint64_t{1} << s->npages) - 1) << i;
    pc->free |= mask;
    if (!zeroed) pc->dirty |= mask;  // held objects: zeroed when taken (scav stays clear)
    if (pc->nspans < PageCache::kSpans) {
      pc->spans[pc->nspans++] = s;
      return;
    }
    std::lock_guard<SpinMutex> g(lock_);
    span_pool_.push_back(s);
    return;
  }
  std::lock_guard<SpinMutex> g(lock_);
  retire_span(s);
  if (!zeroed)
    for_page_words(s->start, s->npages,
                   [](HeapArena* a, size_t w, unsigned, size_t, uint64_t mask) { a->dirty[w] |= mask; });
  insert_run(s->start, s->npages, monotonic_ns());
  // The span struct is reused later, its bitmaps' block with it. A concurrent lock-free
  // reader that loaded the span pointer before the map was cleared sees kDead and gives
  // up; span structs are never freed while the heap lives (INV-HEAP-1).
  span_pool_.push_back(s);
}

size_t mheap::free_pages_locked_count() {
  std::lock_guard<SpinMutex> g(lock_);
  size_t n = 0;
  for (auto& [addr, run] : runs_by_addr_) n += run.npages;
  return n;
}

uint64_t mheap::check_free_runs() {
  std::lock_guard<SpinMutex> g(lock_);
  uint64_t bad = 0;
  auto fault = [&bad](const char* what, uintptr_t addr, size_t npages) {
    if (bad++ < 10) log_error("verifier: free run %#" PRIxPTR " (%zu pages): %s", addr, npages, what);
  };
  if (runs_by_size_.size() != runs_by_addr_.size())
    fault("the two free-run indexes differ in size", 0, runs_by_size_.size());
  uintptr_t prev_end = 0;
  for (auto& [addr, run] : runs_by_addr_) {
    if (run.npages == 0) fault("is empty", addr, 0);
    if (!runs_by_size_.count({run.npages, addr})) fault("is missing from the size index", addr, run.npages);
    if (prev_end != 0 && addr <= prev_end)
      fault(addr == prev_end ? "touches the run before it (not coalesced)" : "overlaps the run before it",
            addr, run.npages);
    prev_end = addr + run.npages * kPageSize;
    for (uintptr_t p = addr; p < prev_end; p += kPageSize) {
      HeapArena* a = arena_of(p);
      if (!a) {
        fault("lies outside the arenas", addr, run.npages);
        break;
      }
      if (a->spans[(p >> kPageShift) % kPagesPerArena].load(std::memory_order_relaxed)) {
        fault("has a page in a span", addr, run.npages);
        break;
      }
    }
  }
  return bad;
}

std::vector<std::pair<uintptr_t, size_t>> mheap::chunks() {
  std::lock_guard<SpinMutex> g(lock_);
  std::vector<std::pair<uintptr_t, size_t>> v;
  for (HeapArena* a : arenas_)
    if (a->base == a->chunk_base) v.emplace_back(a->chunk_base, a->chunk_bytes);
  return v;
}

size_t mheap::free_run_pages_at(uintptr_t p) {
  std::lock_guard<SpinMutex> g(lock_);
  auto it = runs_by_addr_.upper_bound(p);
  if (it == runs_by_addr_.begin()) return 0;
  --it;
  return p < it->first + it->second.npages * kPageSize ? it->second.npages : 0;
}

bool mheap::free_page_dirty(uintptr_t p) {
  std::lock_guard<SpinMutex> g(lock_);
  HeapArena* a = arena_of(p);
  size_t i = (p >> kPageShift) % kPagesPerArena;
  return a && (a->dirty[i / 64] >> (i % 64) & 1);
}

// Whether a run freed at freed_ns is younger than min_age_ns at now_ns (0: no age needed). A
// run freed (or joined by pages freed) after now_ns was read is young, not old.
static bool too_young(uint64_t freed_ns, uint64_t now_ns, uint64_t min_age_ns) {
  return min_age_ns && (freed_ns >= now_ns || now_ns - freed_ns < min_age_ns);
}

size_t mheap::scavenge(uint64_t now_ns, uint64_t min_age_ns) {
  size_t released = scavenge_some(SIZE_MAX, now_ns, min_age_ns, kScavengeBulkBatchPages);
  std::lock_guard<SpinMutex> g(lock_);
  release_free_chunks_locked(now_ns, min_age_ns);
  return released;
}

size_t mheap::scavenge_some(size_t want, uint64_t now_ns, uint64_t min_age_ns,
                            size_t batch_pages) {
  // Go's scavenger works down from the top of the heap too (its allocation is lowest-first).
  // The pages of a batch leave the free runs while they are released, so that no allocation
  // takes them meanwhile (Go's scavenger allocates the pages it releases, for the same
  // reason); they go back as one released run, which joins its neighbours again.
  size_t released = 0;
  uintptr_t below = UINTPTR_MAX;  // pages at and above this were looked at already
  while (released < want) {
    uintptr_t lo = 0, hi = 0;
    uint64_t freed_ns = 0;
    {
      std::lock_guard<SpinMutex> g(lock_);
      auto it = runs_by_addr_.lower_bound(below);
      bool found = false;
      while (!found && it != runs_by_addr_.begin()) {
        --it;
        if (too_young(it->second.freed_ns, now_ns, min_age_ns)) continue;
        const uintptr_t rs = it->first, re = rs + it->second.npages * kPageSize;
        uintptr_t p = unreleased_end_locked(rs, std::min(re, below));
        if (p == rs) continue;  // every page of it released already
        const size_t left = (want - released + kPageSize - 1) / kPageSize;
        const size_t max_pages = std::min(std::max<size_t>(batch_pages, 1), std::max<size_t>(left, 1));
        hi = p;
        lo = p - kPageSize;
        while (lo > rs && (hi - lo) / kPageSize < max_pages && !page_released_locked(lo - kPageSize))
          lo -= kPageSize;
        // [lo, hi) leaves the run; what is left of it on either side stays free. Neither part
        // touches another run (the run did not), so they go straight into the indexes.
        freed_ns = it->second.freed_ns;
        erase_run(it);
        if (rs < lo) add_run_locked(rs, (lo - rs) / kPageSize, freed_ns);
        if (hi < re) add_run_locked(hi, (re - hi) / kPageSize, freed_ns);
        found = true;
      }
      if (!found) break;
    }
    os_release(reinterpret_cast<void*>(lo), hi - lo);
    {
      std::lock_guard<SpinMutex> g(lock_);
      for_page_words(lo, (hi - lo) / kPageSize, [](HeapArena* a, size_t w, unsigned, size_t, uint64_t mask) {
        a->scavenged[w] |= mask;
        a->dirty[w] &= ~mask;  // released pages read as zero
      });
      counters.heap_released.fetch_add(hi - lo, std::memory_order_relaxed);
      insert_run(lo, (hi - lo) / kPageSize, freed_ns);
    }
    released += hi - lo;
    below = lo;
  }
  return released;
}

uintptr_t mheap::unreleased_end_locked(uintptr_t rs, uintptr_t p) const {
  // A bitmap word at a time: each tick starts at the top of the heap, and a page at a time
  // its walk down through a gigabyte already released held the heap lock for ~0.5 ms.
  while (p > rs) {
    uintptr_t q = p - kPageSize;  // the highest page left to look at
    const HeapArena* a = arena_of(q);
    size_t i = (q >> kPageShift) % kPagesPerArena;
    unsigned bit = static_cast<unsigned>(i % 64);
    uint64_t upto = bit == 63 ? ~uint64_t{0} : (uint64_t{2} << bit) - 1;  // pages <= q
    uint64_t unreleased = ~a->scavenged[i / 64] & upto;
    uintptr_t word_start = q - uintptr_t(bit) * kPageSize;
    if (unreleased) {
      unsigned top = 63 - static_cast<unsigned>(__builtin_clzll(unreleased));
      uintptr_t page = word_start + uintptr_t(top) * kPageSize;
      return page >= rs ? page + kPageSize : rs;
    }
    if (word_start <= rs) return rs;
    p = word_start;
  }
  return rs;
}

bool mheap::free_page_released(uintptr_t p) {
  std::lock_guard<SpinMutex> g(lock_);
  return arena_of(p) && page_released_locked(p);
}

void mheap::release_free_chunks_locked(uint64_t now_ns, uint64_t min_age_ns) {
  // A page-source chunk wholly covered by one free run, free for at least min_age_ns (the
  // run's latest free time: every page of it has been free that long), goes back to
  // mimalloc.
  std::vector<std::pair<uintptr_t, size_t>> chunks;
  for (HeapArena* a : arenas_)
    if (a->base == a->chunk_base) chunks.emplace_back(a->chunk_base, a->chunk_bytes);
  for (auto [base, bytes] : chunks) {
    uintptr_t lo = base + kChunkHeadBytes;  // the chunk's free pages start here
    auto it = runs_by_addr_.upper_bound(lo);
    if (it == runs_by_addr_.begin()) continue;
    --it;
    uintptr_t rs = it->first, re = rs + it->second.npages * kPageSize;
    if (rs > lo || re < base + bytes) continue;
    if (too_young(it->second.freed_ns, now_ns, min_age_ns)) continue;
    FreeRun run = it->second;
    erase_run(it);
    if (rs < lo) add_run_locked(rs, (lo - rs) / kPageSize, run.freed_ns);
    if (re > base + bytes) add_run_locked(base + bytes, (re - base - bytes) / kPageSize, run.freed_ns);
    size_t released_pages = 0;
    for (auto it2 = arenas_.begin(); it2 != arenas_.end();) {
      HeapArena* a = *it2;
      if (a->chunk_base != base) {
        ++it2;
        continue;
      }
      for (size_t w = 0; w < kPagesPerArena / 64; w++) released_pages += __builtin_popcountll(a->scavenged[w]);
      __atomic_store_n(&arena_map_[a->base >> kArenaShift], nullptr, __ATOMIC_RELEASE);
      memset(a->scavenged, 0, sizeof a->scavenged);
      memset(a->dirty, 0, sizeof a->dirty);
      arena_pool_.push_back(a);
      it2 = arenas_.erase(it2);
    }
    counters.heap_released.fetch_sub(released_pages * kPageSize, std::memory_order_relaxed);
    counters.heap_sys.fetch_sub(bytes - kChunkHeadBytes, std::memory_order_relaxed);
    unpoison_for_reuse(base, bytes);  // leaves the heap (alloc/poison.h)
    os_arena_free(reinterpret_cast<void*>(base), bytes);
  }
}

}  // namespace tricolor::internal
