// mheap: the page heap. Arenas of 64 MiB from the page source, a page allocator over them
// (free page runs, best fit, coalesced on free), the page -> span map, the mcentrals, and
// the scavenger's bookkeeping. See lib/alloc/README.md for the overview.
//
// Concurrency: `lock` guards the page allocator, the arena list and span metadata
// allocation. The page -> span map is read without the lock (gc_base, the marker):
// entries are published with release stores after the span is set up, and cleared before
// its pages are reused (INV-HEAP-1: a non-null entry always points to a span whose state
// is kInUse or that is being torn down under the lock; readers check state).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "alloc/mcentral.h"
#include "alloc/mspan.h"
#include "os/page_source.h"
#include "os/clock.h"

namespace tricolor::internal {

inline constexpr size_t kPagesPerArena = kArenaBytes / kPageSize;  // 8192
// The first page of every chunk the heap takes from the page source holds no object. A
// chunk's base is a round address (64 MiB-aligned, often more) that code handling the
// mapping computes and leaves behind, with base + 1 and the like, in stack slots that later
// frames do not overwrite, where the conservative stack scan reads it as a pointer. Seen in
// the TSan build: the heap's first object, at its first chunk's base, outlived its last
// reference through two such words on the main thread's stack, one in the test's frame and
// one in its callers' frames (1 run in 15; none in 400 with the page skipped). bdwgc
// blacklists the pages such words name; this is the page they name most, for 8 KiB in
// 64 MiB.
inline constexpr size_t kChunkHeadBytes = kPageSize;
inline constexpr unsigned kAddrBits = 48;
inline constexpr size_t kArenaMapEntries = size_t{1} << (kAddrBits - kArenaShift);
// The largest object span cleared in one go by whoever holds it: the sweep that frees it,
// or the allocation that takes its pages dirty. A larger clear runs on the allocating
// thread inside a collector wait (zero_large), off the sweep, whose work stays in steps of
// tens of microseconds.
inline constexpr size_t kClearInPlaceBytes = 256 << 10;

struct HeapArena {
  std::atomic<mspan*> spans[kPagesPerArena];   // page -> span, for in-use spans
  uint64_t scavenged[kPagesPerArena / 64];     // free page returned to the OS (lock)
  uint64_t dirty[kPagesPerArena / 64];         // free page that held objects (lock)
  uintptr_t base;
  uintptr_t chunk_base;                        // the page-source allocation it belongs to
  size_t chunk_bytes;
};

// A run of free pages.
struct FreeRun {
  size_t npages;
  uint64_t freed_ns;  // when it was last freed (the scavenger's age)
};

struct HeapCounters {
  std::atomic<uint64_t> heap_sys{0};       // arena bytes
  std::atomic<uint64_t> pages_inuse{0};    // pages in spans
  std::atomic<uint64_t> heap_released{0};  // free bytes returned to the OS
  // Span structs made (in use, pooled, or held by page caches): never fewer than the spans
  // in use. Counted when a struct is made, not per span set up and torn down: two atomic
  // read-modify-writes per span on the allocation path, shared by every thread.
  std::atomic<uint64_t> span_structs{0};
};

// Go's pageCache: up to 64 contiguous free pages that one mcache takes from the page
// allocator at once, with span structs, so that its spans of up to 16 pages take their
// pages and their struct without the heap lock, the free-run index or the span table. The
// owner alone uses it (or the collector with the world stopped); mcache::release_all
// gives the pages still free back to the heap. Pages held here are neither in use nor in a
// free run: the scavenger does not see them.
struct PageCache {
  static constexpr size_t kPages = 64;
  static constexpr size_t kMaxSpanPages = 16;  // Go: pageCachePages / 4
  static constexpr int kSpans = 8;             // span structs held ahead
  uintptr_t base = 0;  // the page of bit 0
  uint64_t free = 0;   // bit i: page i is free here
  uint64_t dirty = 0;  // page i held objects (must be zeroed); taken from the arena's bits
  uint64_t scav = 0;   // page i was returned to the OS (reads as zero)
  mspan* spans[kSpans];
  int nspans = 0;
};

class mheap {
 public:
  void init();
  void destroy();  // returns every arena (gc_shutdown)

  // A span of npages for span class sc, set up and in state kInUse, or nullptr when out of
  // memory. Publishes the page map.
  // Returns nullptr also when the pages in use would pass limit_bytes (the memory limit).
  // pc: the calling mcache's page cache, used for spans of up to PageCache::kMaxSpanPages.
  mspan* alloc_span(size_t npages, SpanClass sc, bool* needzero, PageCache* pc = nullptr);
  std::atomic<uint64_t> limit_bytes{UINT64_MAX};
  // Returns a span's pages (the span must be unlinked from every list). pc: the calling
  // thread's own page cache, or nullptr; a span of up to PageCache::kMaxSpanPages pages
  // inside its window goes back to it, without the heap lock. zeroed: the caller cleared
  // the span's pages, which the next span taking them need not clear.
  void free_span(mspan* s, PageCache* pc = nullptr, bool zeroed = false);
  // Gives a page cache's free pages and span structs back to the heap (its owner, or the
  // world stopped).
  void flush_page_cache(PageCache* pc);

  // The span holding address p, or nullptr. Lock-free, O(1).
  static mspan* span_of(uintptr_t p) {
    if (p >> kAddrBits) return nullptr;
    HeapArena* a = arena_map_[p >> kArenaShift];
    if (!a) return nullptr;
    // Acquire: pairs with the release store that published the span.
    return a->spans[(p >> kPageShift) % kPagesPerArena].load(std::memory_order_acquire);
  }

  // span_of for an address known to be inside an arena (a marker's own work items, object
  // bases it queued): no range or arena check.
  static mspan* span_of_heap(uintptr_t p) {
    HeapArena* a = arena_map_[p >> kArenaShift];
    return a->spans[(p >> kPageShift) % kPagesPerArena].load(std::memory_order_acquire);
  }

  // Releases free pages unused for at least min_age_ns (0: all) to the OS; also returns
  // wholly free arenas, free for as long, to the page source. Returns bytes released.
  size_t scavenge(uint64_t now_ns, uint64_t min_age_ns);
  // Releases up to `want` bytes (rounded up to pages) of free pages not yet released, from
  // the highest addresses down (allocation takes the lowest first), of runs free for at
  // least min_age_ns (0: any). In batches of at most batch_pages, each taken out of the free
  // runs under the lock and released without it: an allocation never waits for a madvise of
  // more than a batch. Returns bytes released.
  size_t scavenge_some(size_t want, uint64_t now_ns, uint64_t min_age_ns,
                       size_t batch_pages = kScavengeBatchPages);
  // The background scavenger's batch (512 KiB), and the one of scavenge (age, and
  // gc_free_os_memory: 32 MiB, fewer system calls and TLB shootdowns for a large release;
  // ThreadSanitizer also drops the shadow of a large madvised range, not of small ones).
  static constexpr size_t kScavengeBatchPages = 64;
  static constexpr size_t kScavengeBulkBatchPages = 4096;

  mcentral& central(SpanClass sc) { return central_[sc]; }

  // The sweep generation (see mspan.h). Written only with the world stopped.
  std::atomic<uint32_t> sweepgen{2};
  HeapCounters counters;

  // Visits every in-use span under the lock (verifier, class statistics). A span that a
  // page cache's owner sets up meanwhile is visited if its state says kInUse (acquire:
  // its setup is visible), or not at all.
  template <class F>
  void for_each_span(F&& f) {
    std::lock_guard<SpinMutex> g(lock_);
    for (mspan* s : all_spans_) if (s->state.load(std::memory_order_acquire) == SpanState::kInUse) f(s);
  }
  // The same for a statistic read while the heap changes (gc_read_class_stats): the lock
  // is dropped every kChunk spans, so an allocation never waits for a walk of the whole
  // heap (35k spans, milliseconds, at every cycle end while a heap trace is written). A
  // span allocated or freed meanwhile may be missed or seen twice; a quiet heap is
  // visited exactly once.
  template <class F>
  void for_each_span_chunked(F&& f) {
    constexpr size_t kChunk = 256;
    for (size_t i = 0;;) {
      std::lock_guard<SpinMutex> g(lock_);
      size_t end = std::min(all_spans_.size(), i + kChunk);
      if (i >= end) return;
      for (; i < end; i++)
        if (all_spans_[i]->state.load(std::memory_order_acquire) == SpanState::kInUse) f(all_spans_[i]);
    }
  }
  size_t free_pages_locked_count();
  // The free-run index checked (the verifier): both indexes hold the same runs, no two runs
  // overlap or touch (a freed run joins its neighbours), and no page of a run is in a span
  // (its page-map entries are null). Returns the number of faults, each logged.
  uint64_t check_free_runs();
  // The chunks taken from the page source, as (base, bytes). For tests.
  std::vector<std::pair<uintptr_t, size_t>> chunks();
  // Pages of the free run holding address p, 0 if p is in no free run (tests: coalescing).
  size_t free_run_pages_at(uintptr_t p);
  // Whether the free page at p is marked as holding old objects (to be cleared when taken),
  // in the heap's free runs. For tests.
  bool free_page_dirty(uintptr_t p);
  // Whether the free page at p is marked released to the OS. For tests.
  bool free_page_released(uintptr_t p);

 private:
  // Files a chunk of new arenas from the OS (heap lock held) as one free run.
  void add_arenas(void* mem, size_t bytes);
  void release_free_chunks_locked(uint64_t now_ns, uint64_t min_age_ns);
  // The end of the highest page in [rs, p) not released to the OS, or rs if there is none.
  uintptr_t unreleased_end_locked(uintptr_t rs, uintptr_t p) const;
  bool page_released_locked(uintptr_t p) const {
    const HeapArena* a = arena_of(p);
    size_t i = (p >> kPageShift) % kPagesPerArena;
    return a->scavenged[i / 64] >> (i % 64) & 1;
  }
  uintptr_t alloc_pages(size_t npages);            // lock held; 0 if no run fits
  // alloc_pages, growing the heap if no run fits (drops the lock meanwhile); 0: out of
  // memory.
  uintptr_t alloc_pages_or_grow(std::unique_lock<SpinMutex>& g, size_t npages);
  // Clears the dirty and released bits of the pages [addr, addr + npages) (lock held),
  // calling f(k, dirty, released) for each piece of up to 64 pages from the k-th, the
  // pages' bits as masks (bit j: page k + j); the released ones leave heap_released.
  template <class F> void clear_page_bits(uintptr_t addr, size_t npages, F f);
  // The same for npages <= 64, the bits returned as masks (bit i: page i).
  void take_page_bits(uintptr_t addr, size_t npages, uint64_t* dirty, uint64_t* scav);
  void fill_page_cache_locked(PageCache* pc, size_t npages, std::unique_lock<SpinMutex>& g);
  void flush_page_cache_locked(PageCache* pc);
  // A span being freed: state kDead, page map cleared, counted out of use (free_span).
  void retire_span(mspan* s);
  mspan* new_span_locked();  // a pooled span struct, or a new one (registered in all_spans_)
  // alloc_span once its pages are counted in use.
  mspan* take_span(size_t npages, SpanClass sc, bool* needzero, PageCache* pc);
  // Sets s up over [addr, npages pages) and publishes it (no lock needed).
  // dirty: a page held objects (needzero); fresh: a page may not be resident (mspan::fresh).
  void setup_span(mspan* s, uintptr_t addr, size_t npages, SpanClass sc, bool dirty, bool fresh);
  void insert_run(uintptr_t addr, size_t npages, uint64_t freed_ns);
  // Files a run that touches no other into both indexes (no coalescing).
  void add_run_locked(uintptr_t addr, size_t npages, uint64_t freed_ns);
  // Runs f(arena, word, offset, k, mask) over the page bitmaps of [addr, npages pages), a
  // bitmap word at a time: mask has the bits of pages k.. of the range in word `word`, from
  // bit `offset`.
  template <class F> void for_page_words(uintptr_t addr, size_t npages, F f);
  void erase_run(std::map<uintptr_t, FreeRun>::iterator it);
  // Gives the run at it a new start, length and age in its own index nodes; the new start
  // must keep its place in address order.
  void reset_run(std::map<uintptr_t, FreeRun>::iterator it, uintptr_t addr, size_t npages,
                 uint64_t freed_ns);
  // Points the page map's entries of [addr, npages pages) at s (release stores).
  void set_span_map(uintptr_t addr, size_t npages, mspan* s);
  HeapArena* arena_of(uintptr_t p) const { return arena_map_[p >> kArenaShift]; }

  static HeapArena** arena_map_;  // kArenaMapEntries entries, lazily committed

  SpinMutex lock_;
  std::map<uintptr_t, FreeRun> runs_by_addr_;
  std::set<std::pair<size_t, uintptr_t>> runs_by_size_;
  std::vector<HeapArena*> arenas_;
  // HeapArena structs of released arenas, for the next grow: never unmapped while the heap
  // lives, since a lock-free span_of may still hold one (INV-HEAP-1). Their page maps are
  // all null (every page was free).
  std::vector<HeapArena*> arena_pool_;
  // Every span struct the heap made (in use, pooled, held by a page cache): structs are
  // never freed while the heap lives (INV-HEAP-1), so a struct is added once, when made.
  std::vector<mspan*> all_spans_;
  std::vector<mspan*> span_pool_;      // dead span structs for reuse
  mcentral central_[kNumSpanClasses];
};

mheap& heap();

// Tests: fn runs when a thread grows the heap, inside its collector wait, just before the
// arenas are taken from the OS (nullptr: none).
void test_set_grow_hook(void (*fn)());

}  // namespace tricolor::internal
