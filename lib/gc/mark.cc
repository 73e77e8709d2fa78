// Marking: see mark.h.
#include "gc/mark.h"

#include <cstring>
#include <vector>

#include "alloc/mheap.h"
#include "alloc/types.h"
#include "gc/stacks.h"
#include "gc/testing.h"
#include "gc/thread.h"
#include "tricolor/gc.h"
#include "trace/log.h"

// Scanning reads words that mutators may write concurrently with plain stores (a
// conservative object's integers, a stack being run after its scan). Such a read may see
// an old or a new value, and both are safe: every candidate is validated by find_object.
// TSan cannot know that, so the scanning functions are not instrumented; the words are
// loaded with relaxed atomics where the compiler could otherwise tear or elide them.
#if defined(__clang__) || defined(__GNUC__)
#define TRICOLOR_NO_SANITIZE_SCAN __attribute__((no_sanitize("thread", "address")))
#else
#define TRICOLOR_NO_SANITIZE_SCAN
#endif

// The hot path of marking (drain -> scan_item -> grey) is one function in normal builds: a
// call per object and per pointer cost a frame's worth of register saves and restores each.
// Sanitizer builds keep the calls: a function whose sanitizer attributes differ from its
// caller's cannot be inlined into it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TRICOLOR_MARK_INLINE __attribute__((noinline))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TRICOLOR_MARK_INLINE __attribute__((noinline))
#endif
#endif
#ifndef TRICOLOR_MARK_INLINE
#define TRICOLOR_MARK_INLINE __attribute__((always_inline)) inline
#endif

namespace tricolor::internal {

namespace {
MarkState g_mark;
}
MarkState& mark_state() { return g_mark; }

void WorkQueue::push_full(Workbuf* b) {
  std::lock_guard<std::mutex> g(mu_);
  b->next = full_;
  full_ = b;
  nfull_.fetch_add(1, std::memory_order_seq_cst);
}

Workbuf* WorkQueue::pop_full() {
  if (nfull_.load(std::memory_order_relaxed) == 0) return nullptr;  // relaxed: a hint
  std::lock_guard<std::mutex> g(mu_);
  Workbuf* b = full_;
  if (b) {
    full_ = b->next;
    nfull_.fetch_sub(1, std::memory_order_seq_cst);
  }
  return b;
}

Workbuf* WorkQueue::get_empty() {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (Workbuf* b = empty_) {
      empty_ = b->next;
      nempty_--;
      b->n = 0;
      b->next = nullptr;
      return b;
    }
    if (nbufs_ >= limit_) return nullptr;  // the bound: the caller overflows (INV-MARK-4)
    nbufs_++;
  }
  return new Workbuf();
}

void WorkQueue::put_empty(Workbuf* b) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (nbufs_ <= limit_) {
      b->next = empty_;
      empty_ = b;
      nempty_++;
      return;
    }
    nbufs_--;  // the limit was lowered while b was in use
  }
  delete b;
}

void WorkQueue::trim(size_t keep) {
  Workbuf* freed = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    while (nempty_ > keep) {
      Workbuf* b = empty_;
      empty_ = b->next;
      nempty_--;
      nbufs_--;
      b->next = freed;
      freed = b;
    }
  }
  while (freed) {  // outside the lock: markers need not wait for free()
    Workbuf* n = freed->next;
    delete freed;
    freed = n;
  }
}

void WorkQueue::set_limit(size_t nbufs) {
  {
    std::lock_guard<std::mutex> g(mu_);
    limit_ = nbufs;
  }
  trim(nbufs);
}

size_t WorkQueue::buffers() {
  std::lock_guard<std::mutex> g(mu_);
  return nbufs_;
}

void WorkQueue::free_all() {
  std::lock_guard<std::mutex> g(mu_);
  for (Workbuf* l : {full_, empty_})
    while (l) {
      Workbuf* n = l->next;
      delete l;
      l = n;
    }
  full_ = empty_ = nullptr;
  nfull_.store(0);
  nempty_ = nbufs_ = 0;
}

// INV-MARK-4. Cold: with the default bound only a grey set of millions of objects gets here.
[[gnu::noinline, gnu::cold]] static void overflow() {
  g_mark.overflows.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  // Seq_cst: stored before the marker's busy decrement, which termination reads seq_cst.
  if (!g_mark.overflowed.load(std::memory_order_relaxed)) g_mark.overflowed.store(true);
}

void GcWork::put_slow(uintptr_t obj) {
  if (buf && buf->n == Workbuf::kCap) {
    g_mark.queue.push_full(buf);
    buf = nullptr;
  }
  if (!buf) buf = g_mark.queue.get_empty();
  if (!buf) {
    overflow();  // obj is marked (or an oblet of a marked object): the rescan covers it
    return;
  }
  buf->obj[buf->n++] = obj;
}

bool GcWork::get_slow(uintptr_t* obj) {
  if (!buf || buf->n == 0) {
    Workbuf* b = g_mark.queue.pop_full();
    if (!b) return false;
    if (buf) g_mark.queue.put_empty(buf);
    buf = b;
  }
  *obj = buf->obj[--buf->n];
  return true;
}

// Go's gcWork.balance, called by drain while the shared queue is empty: half of the local
// buffer (its older half, the items nearer the roots) goes to the queue, so that the other
// markers and the assists find work. Without it a narrow, deep structure (a tree, a list)
// keeps its whole grey set in one marker's buffer, and every other marker idles or parks.
void GcWork::balance() {
  if (!buf || buf->n < 8) return;
  Workbuf* b = g_mark.queue.get_empty();
  if (!b) return;  // at the bound: keep it all
  int half = buf->n / 2;
  memcpy(b->obj, buf->obj, size_t(half) * sizeof(uintptr_t));
  memmove(buf->obj, buf->obj + half, size_t(buf->n - half) * sizeof(uintptr_t));
  b->n = half;
  buf->n -= half;
  g_mark.queue.push_full(b);
}

void GcWork::dispose() {
  if (buf) {
    if (buf->n) g_mark.queue.push_full(buf);
    else g_mark.queue.put_empty(buf);
    buf = nullptr;
  }
  // Relaxed: totals read after the markers have synchronised (mark termination).
  if (bytes_marked) g_mark.bytes_marked.fetch_add(bytes_marked, std::memory_order_relaxed);
  if (scan_work) g_mark.scan_work.fetch_add(scan_work, std::memory_order_relaxed);
  bytes_marked = scan_work = 0;
}

bool find_object(uintptr_t p, ObjRef* out) {
  mspan* s = mheap::span_of(p);
  if (!s || s->state.load(std::memory_order_acquire) != SpanState::kInUse) return false;
  if (p < s->start || p >= s->limit) return false;
  uint32_t idx = s->object_index(p);
  if (s->is_free(idx)) return false;
  out->span = s;
  out->idx = idx;
  return true;
}

// grey_pointer's body once p's span is known, inlined into the scan loops.
// grey_in once p is known to lie in [s->start, s->limit) of a span in use.
TRICOLOR_MARK_INLINE static void grey_checked(uintptr_t p, mspan* s, GcWork& w) {
  uint32_t idx = s->object_index(p);
  // A marked slot is an allocated object (INV-MARK-2, sweeping clears the bits), so the
  // common repeat visit ends here without the free-slot test (INV-SPAN-3). One load of the
  // mark word serves both tests before the fetch_or (try_mark's, inlined by hand).
  uint64_t* mw = &s->mark_bits[idx / 64];
  uint64_t bit = uint64_t{1} << (idx % 64);
  if ((__atomic_load_n(mw, __ATOMIC_RELAXED) & bit) || s->is_free(idx)) return;
  // Relaxed: the mark bit guards no data; the work queue hand-off orders the scan.
  if (__atomic_fetch_or(mw, bit, __ATOMIC_RELAXED) & bit) return;
  w.bytes_marked += s->elemsize;
  if (!s->noscan()) w.put(s->object_base(idx));
}

TRICOLOR_MARK_INLINE static void grey_in(uintptr_t p, mspan* s, GcWork& w) {
  if (s->state.load(std::memory_order_acquire) != SpanState::kInUse) return;
  if (p - s->start >= s->limit - s->start) return;  // one unsigned compare: [start, limit)
  grey_checked(p, s, w);
}

TRICOLOR_MARK_INLINE static void grey(uintptr_t p, GcWork& w) {
  if (mspan* s = mheap::span_of(p)) grey_in(p, s, w);
}

void grey_pointer(uintptr_t p, GcWork& w) { grey(p, w); }

void grey_pointers(const uintptr_t* v, size_t n, GcWork& w) {
  // In passes over chunks of the list, so that the cache misses of one pass overlap
  // instead of following each other: the spans are looked up and their first lines
  // prefetched, then the mark words those lines name are prefetched, then the pointers
  // are greyed. One pointer after the other, a write-barrier buffer flushed by a thread
  // whose caches do not hold its spans (the collector's, at mark termination) took about
  // 85 ns a pointer, three misses in a row: 26 us for 305 pointers in a pause.
  constexpr size_t kChunk = 64;
  mspan* spans[kChunk];
  for (size_t base = 0; base < n; base += kChunk) {
    size_t m = std::min(kChunk, n - base);
    const uintptr_t* p = v + base;
    for (size_t i = 0; i < m; i++) {
      spans[i] = mheap::span_of(p[i]);
      if (spans[i]) __builtin_prefetch(spans[i]);
    }
    for (size_t i = 0; i < m; i++) {
      mspan* s = spans[i];
      // As grey_in: the span's fields are read once its state says it is set up.
      if (s && s->state.load(std::memory_order_acquire) == SpanState::kInUse &&
          p[i] - s->start < s->limit - s->start)
        __builtin_prefetch(&s->mark_bits[s->object_index(p[i]) / 64]);
    }
    for (size_t i = 0; i < m; i++)
      if (spans[i]) grey_in(p[i], spans[i], w);
  }
}

namespace {
// The pointers a drain finds in the objects it scans are greyed kCap pointers later, with
// their span's first line (state, bounds, divisor, mark-bit pointer) prefetched when they
// are found: on a heap whose pointers go anywhere, the greying of a child missed on its
// span's line and then on its mark word, one after the other, for every pointer.
struct ChildQueue {
  static constexpr unsigned kCap = 16;  // a power of two
  uintptr_t v[kCap];
  mspan* s[kCap];
  // Pointers staged since the last flush: the last min(count, kCap) of them wait, the
  // newest in slot (count - 1) % kCap. 64 bits: it never wraps, so a full queue is never
  // taken for an empty one. (A head and a length, both kept modulo kCap, cost twice the
  // instructions per pointer.)
  uint64_t count = 0;
};
}  // namespace

// home: the span of the object p was read from (its lines are in the cache).
TRICOLOR_MARK_INLINE static void stage(uintptr_t p, GcWork& w, ChildQueue* q, mspan* home) {
  // A pointer into the scanned object's own span (most of them in a structure allocated in
  // the order it is linked, a tree or a list: the next node is the next slot) is greyed at
  // once: the span is in use and in the cache, so neither the page-map lookup nor the wait
  // in the queue is needed.
  if (p - home->start < home->limit - home->start) {
    grey_checked(p, home, w);
    return;
  }
  if (!q) {
    grey(p, w);
    return;
  }
  mspan* s = mheap::span_of(p);
  if (!s) return;
  __builtin_prefetch(s);
  unsigned slot = unsigned(q->count++) % ChildQueue::kCap;
  if (q->count > ChildQueue::kCap)  // full: the oldest, in this slot, is greyed now
    grey_in(q->v[slot], q->s[slot], w);
  q->v[slot] = p;
  q->s[slot] = s;
}

static void flush_children(GcWork& w, ChildQueue& q) {
  uint64_t n = std::min<uint64_t>(q.count, ChildQueue::kCap);
  for (uint64_t i = q.count - n; i < q.count; i++)
    grey_in(q.v[i % ChildQueue::kCap], q.s[i % ChildQueue::kCap], w);
  q.count = 0;
}

void mark_new_object(mspan* s, uint32_t idx) {
  // The allocating thread's own count (MarkState::bytes_allocated_black).
  if (s->try_mark(idx)) tls_thread->black_bytes += s->elemsize;
}

TRICOLOR_NO_SANITIZE_SCAN
void scan_conservative(uintptr_t lo, uintptr_t hi, GcWork& w) {
  lo = (lo + 7) & ~uintptr_t{7};
  for (uintptr_t a = lo; a + 8 <= hi; a += 8) {
    uintptr_t v = __atomic_load_n(reinterpret_cast<uintptr_t*>(a), __ATOMIC_RELAXED);
    if (v >= 4096) grey_pointer(v, w);
  }
  w.scan_work += hi > lo ? hi - lo : 0;
}

TRICOLOR_NO_SANITIZE_SCAN
static void scan_typed_range(uintptr_t base, uintptr_t lo, uintptr_t hi, const gc_type* t,
                             mspan* home, GcWork& w, ChildQueue* q = nullptr) {
  if (!t || t->conservative) {
    scan_conservative(lo, hi, w);
    return;
  }
  // Only the pointer words are visited, found with count-trailing-zeros in the type's bits,
  // not every word tested against the map: word_is_ptr's modulo by the element size made a
  // typed array of mostly NULL slots (an interpreter's vector with spare capacity) mark 2.5x
  // slower than the same array scanned conservatively (3.6 against 1.4 ns a word).
  // lo and hi are word-aligned offsets from base (an object or one of its oblets).
  w.scan_work += hi - lo;
  auto visit = [&](uintptr_t a) {
    uintptr_t v = __atomic_load_n(reinterpret_cast<uintptr_t*>(a), __ATOMIC_RELAXED);
    if (v >= 4096) stage(v, w, q, home);
  };
  if (64 % t->words == 0) {
    // Elements of 1, 2, 4, ... 64 words tile 64-word blocks from base: tile64 is each
    // block's map.
    for (uintptr_t b = base + (lo - base) / 512 * 512; b < hi; b += 512) {
      uint64_t bits = t->tile64;
      if (b < lo) bits &= ~uint64_t{0} << ((lo - b) / 8);
      if (hi - b < 512) bits &= (uint64_t{1} << ((hi - b) / 8)) - 1;
      for (; bits; bits &= bits - 1) visit(b + 8 * unsigned(__builtin_ctzll(bits)));
    }
    return;
  }
  // Other element sizes: element by element, through the map's words (the map ends at the
  // element's last pointer word).
  const size_t esize = t->words * 8;
  const size_t nmask = t->ptrmask.size();
  for (uintptr_t e = base + (lo - base) / esize * esize; e < hi; e += esize) {
    for (size_t j = 0; j < nmask; j++) {
      for (uint64_t bits = t->ptrmask[j]; bits; bits &= bits - 1) {
        uintptr_t a = e + 8 * (64 * j + unsigned(__builtin_ctzll(bits)));
        if (a >= hi) return;  // the words only grow from here
        if (a >= lo) visit(a);
      }
    }
  }
}

TRICOLOR_NO_SANITIZE_SCAN
// Scans one grey work item (an object base or an oblet start). q: where its pointers wait
// to be greyed (drain), or nullptr to grey them at once.
TRICOLOR_MARK_INLINE static void scan_item(uintptr_t item, GcWork& w, ChildQueue* q,
                                           mspan* s = nullptr) {
  if (!s) s = mheap::span_of_heap(item);  // items are objects (or oblets) greyed in the heap
  TRICOLOR_ASSERT(s != nullptr);
  if (s->size_class() == 0) {
    // Large object: scan one oblet; the first visit queues the others (Go's oblets).
    uintptr_t base = s->start, end = s->start + s->elemsize;
    if (item == base)
      for (uintptr_t o = base + kObletBytes; o < end; o += kObletBytes) w.put(o);
    uintptr_t hi = item + kObletBytes < end ? item + kObletBytes : end;
    scan_typed_range(base, item, hi, s->large_type, s, w, q);
    return;
  }
  // A small span's items are object bases (grey_in, rescan_span): the object's index is
  // computed only when its own heap bits or type are needed.
  uintptr_t base = item;
  TRICOLOR_ASSERT(s->object_base(s->object_index(item)) == item);
  if (s->heap_bits) {
    uint64_t bits = s->uniform_heap_bits();
    if (bits >= kHeapBitsUnset) bits = s->read_heap_bits(s->object_index(item));
    w.scan_work += s->elemsize;
    while (bits) {
      unsigned i = static_cast<unsigned>(__builtin_ctzll(bits));
      bits &= bits - 1;
      uintptr_t v = __atomic_load_n(reinterpret_cast<uintptr_t*>(base + 8 * i), __ATOMIC_RELAXED);
      if (v >= 4096) stage(v, w, q, s);
    }
    return;
  }
  scan_typed_range(base, base, base + s->elemsize, s->object_type(s->object_index(item)), s, w, q);
}

// Objects are scanned through a small FIFO of work items whose memory is prefetched when
// they enter it: scanning an object starts with a cache miss on its first word (most of the
// marking time on a heap of small scattered objects), and with kPrefetchAhead items in
// flight those misses overlap. (The prefetch FIFO of Boehm's mark loop and of Cher, Hosking
// and Vijaykumar, "Software prefetching for mark-sweep garbage collection", ASPLOS 2004.)
// Each item's span is looked up when it enters the FIFO and its first line prefetched with
// the item: binary-trees d20, mark CPU per MB marked 0.76-0.86 ms against 0.81-0.98 when
// scan_item looked the span up itself (3 alternated pairs, each pair lower).
//
// A stop of the world ends the drain within kStopCheckEvery objects: assists (which the stop
// waits for) and workers (which mark termination waits for) give way at once, not after
// their whole budget.
int64_t drain(GcWork& w, int64_t budget) {
  constexpr unsigned kPrefetchAhead = 32;  // a power of two; 8 was too short (README)
  constexpr unsigned kStopCheckEvery = 16;
  uintptr_t ring[kPrefetchAhead];
  mspan* ring_span[kPrefetchAhead];  // each item's span, its first line prefetched with it
  ChildQueue children;
  unsigned head = 0, n = 0, scanned = 0;
  uint64_t start = w.scan_work;
  bool within = true;
  for (;;) {
    // Every kStopCheckEvery objects: the budget (an assist may overshoot it by that many
    // objects), a stop of the world, and whether to share work.
    if (scanned++ % kStopCheckEvery == 0) {  // the first time too (a budget of 0)
      within = budget < 0 || int64_t(w.scan_work - start) < budget;
      // Relaxed: a hint; the callers synchronise with the stop through their own checks.
      if (within && (__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) & kPollStopTheWorld))
        within = false;
      else if (within && g_mark.queue.empty_hint())
        w.balance();
    }
    uintptr_t item;
    while (within && n < kPrefetchAhead && w.get(&item)) {
      __builtin_prefetch(reinterpret_cast<const void*>(item));
      mspan* is = mheap::span_of_heap(item);
      __builtin_prefetch(is);
      unsigned slot = (head + n++) % kPrefetchAhead;
      ring[slot] = item;
      ring_span[slot] = is;
    }
    if (n == 0) {
      if (within && children.count > 0) {  // the pointers still waiting may be new work
        flush_children(w, children);
        continue;
      }
      break;
    }
    if (!within) {  // out of budget or stopping: the items in flight go back to the buffer
      while (n > 0) w.put(ring[(head + --n) % kPrefetchAhead]);
      break;
    }
    item = ring[head];
    mspan* is = ring_span[head];
    head = (head + 1) % kPrefetchAhead;
    n--;
    scan_item(item, w, &children, is);
  }
  flush_children(w, children);  // greyed before the caller lowers `busy` (INV-MARK-3)
  return int64_t(w.scan_work - start);
}

// Every marked, allocated object of a scan span, scanned again (INV-MARK-4). A large object
// is scanned whole rather than queued as oblets: a rescan never needs a buffer for an
// object it does not mark, so each rescan that overflows has marked something new and the
// rescans end. is_free's acquire load of freeindex_for_scan pairs with the allocator's
// release in publish: an allocated slot's zeroing, heap bits and type (large_type) are
// visible; a slot still being allocated is black already and is skipped.
TRICOLOR_NO_SANITIZE_SCAN
static void rescan_span(mspan* s, GcWork& w) {
  if (s->size_class() == 0) {
    if (s->mark_bit(0) && !s->is_free(0))
      scan_typed_range(s->start, s->start, s->start + s->elemsize, s->large_type, s, w);
    return;
  }
  for (uint32_t i = 0; i < s->nelems; i++)
    if (s->mark_bit(i) && !s->is_free(i)) scan_item(s->object_base(i), w, nullptr);
}

bool rescan_overflowed(GcWork& w) {
  if (!g_mark.overflowed.exchange(false, std::memory_order_seq_cst)) return false;
  g_mark.rescans.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  // The span list is copied under the heap lock and walked without it (allocation needs
  // the lock). Spans allocated after the copy hold only objects allocated black.
  std::vector<mspan*> spans;
  spans.reserve(heap().counters.span_structs.load(std::memory_order_relaxed) + 64);
  heap().for_each_span([&](mspan* s) {
    if (!s->noscan()) spans.push_back(s);
  });
  for (mspan* s : spans) rescan_span(s, w);
  return true;
}

void test_set_workbuf_limit(size_t nbufs) { g_mark.queue.set_limit(nbufs ? nbufs : kMaxWorkbufs); }
size_t test_workbufs() { return g_mark.queue.buffers(); }
uint64_t test_mark_overflows() { return g_mark.overflows.load(std::memory_order_relaxed); }
uint64_t test_mark_rescans() { return g_mark.rescans.load(std::memory_order_relaxed); }

}  // namespace tricolor::internal
