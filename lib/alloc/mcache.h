// mcache: the per-thread (per-P) cache of spans, one per span class, with their allocation
// runs (the tiny allocator's among them). No locks: only its owning thread touches it,
// except the collector with the world stopped (runs marked at mark start, flush at mark
// termination).
#pragma once

#include <cstdint>

#include "alloc/mheap.h"
#include "alloc/mspan.h"
#include "tricolor/gc.h"

namespace tricolor::internal {

// A scan run's `type` when no type may skip the heap-bits write (never a gc_type address).
inline const gc_type* const kNoRunType = reinterpret_cast<const gc_type*>(uintptr_t{1});

struct mcache : tricolor_cache {
  // The allocation run of a span class: slots [next, end) of the cached span, taken from it
  // ahead of the allocations (mspan::take_run) and made ready for them at once: cleared,
  // published to the markers (freeindex_for_scan past them), marked if a mark is running
  // (allocate-black; a run that a mark start finds is marked then, blacken_runs). The fast
  // path of gc_alloc hands out `next` and adds `size`: no span state, no per-object check
  // of the phase. A scan run also holds the one type whose objects need no heap-bits write
  // (the span's uniform bits are that type's, INV-SPAN-4; NULL stands for gc_alloc's
  // conservative type), kNoRunType when every object needs one; a noscan run holds NULL.
  // Until handed out, a run's slots count as allocated objects of zero words (gc_base
  // finds them; a conservative pointer marks them): Go's freeIndexForScan moves a slot at a
  // time, this moves a run at a time.
  // (tricolor_run in tricolor/gc.h, whose inline fast paths bump it in the program's code.)
  using Run = tricolor_run;
  // The base holds run[kNumSpanClasses] and tiny_allocs (flushed to the global
  // statistics). The run of the 16 B noscan class is the tiny allocator's: its `next` is a
  // byte cursor, which may point inside a block that holds objects (tiny_block).
  mspan* alloc[kNumSpanClasses];  // never null: the empty dummy span when nothing cached
  // Where each class's run ends. The fast path may see only a part of it: in a span whose
  // pointer bits are kept one by one (mixed), a chunk of the run whose slots have a type's
  // bits written ahead (alloc_small_slow) ends before the run does, and the slots after it
  // are the run's still. Set with the run (take_run); use end_of_run, not run[sc].end, for
  // the run's slots not handed out.
  uintptr_t run_end[kNumSpanClasses];
  // The type of each scan class's last object that took the slow path, and the slot after
  // it: the second object of a type in a row gets a chunk, so that a class whose types
  // alternate does not pay for writing bits ahead that the next object overwrites.
  const gc_type* slow_type[kNumSpanClasses];
  uintptr_t slow_next[kNumSpanClasses];
  uintptr_t end_of_run(int sc) const { return run_end[sc] > run[sc].end ? run_end[sc] : run[sc].end; }
  // Bytes handed out since the last allocation sample (heap trace): a span's free space is
  // charged when it is cached and the slots still free are taken back when it is released,
  // so the sample weights add up to the bytes really allocated. Signed: a release may take
  // back more than was charged since the last sample.
  int64_t sample_bytes = 0;
  // Free pages and span structs for this cache's new spans (mheap.h).
  PageCache pages;
  // What this cache handed out and charged to heap_live, not yet added to the global
  // counters (AllocCounters). Each refill updated four of those, and two CPUs refilling
  // at once passed their cache lines back and forth: two threads allocating 4 KiB objects
  // (a refill per two) spent most of the refill there (perf/README.md). Added to them
  // once kCounterFlushBytes of spans have been charged, by release_all (mark termination,
  // detach: gc_read_stats is exact after a collection) and by flush_counters. heap_live is
  // then short by at most that much per thread; the trigger check adds the thread's own.
  struct PendingCounters {
    uint64_t mallocs = 0;
    uint64_t bytes = 0;    // total_alloc
    int64_t live = 0;      // heap_live (a refund is negative)
    uint64_t charged = 0;  // span bytes charged since the last flush
    uint64_t class_mallocs[kNumSizeClasses] = {};
    // Bit cls: class_mallocs[cls] != 0. The flush visits only those classes: a walk of all
    // of them took 490 of the 1,585 instructions of a 100 KiB allocation (callgrind), each
    // large object flushing on its own.
    uint64_t class_mask[(kNumSizeClasses + 63) / 64] = {};
  } pending;
  static constexpr uint64_t kCounterFlushBytes = 64 << 10;
  void flush_counters();
  // Counts n objects of size class cls, `bytes` in all, as handed out.
  void count_allocs(uint32_t cls, uint64_t n, uint64_t bytes) {
    pending.mallocs += n;
    pending.bytes += bytes;
    pending.class_mallocs[cls] += n;
    pending.class_mask[cls / 64] |= uint64_t{1} << (cls % 64);
  }
  // Counts what was handed out from s since it was cached; returns the bytes of the slots
  // that stayed free, whose up-front charge to heap_live the caller undoes.
  uint64_t account_uncache(mspan* s);
  // A span (or large object) of `bytes` charged to heap_live: flushes the pending
  // counters when enough has gathered.
  void charge(int64_t live_delta) {
    pending.live += live_delta;
    if (live_delta > 0 && (pending.charged += uint64_t(live_delta)) >= kCounterFlushBytes)
      flush_counters();
  }

  void init();
  // Replaces the (full) span of class sc with one that has a free slot; nullptr when the
  // heap cannot supply one (memory limit or OS).
  mspan* refill(SpanClass sc);
  // Returns every cached span to its mcentral and flushes counters (world stopped or
  // the owning thread). give_back: the runs' slots not handed out are given back to their
  // spans (mspan::give_back_run; the world stopped or no mark running); otherwise they stay
  // allocated, zero-filled, until a sweep frees them. Returns the bytes given back.
  uint64_t release_all(bool give_back);
  // Gives the page cache's free pages back to the heap, where the scavenger can release
  // them and other threads use them (the thread detaches, gc_free_os_memory). Kept across
  // cycles otherwise, as Go keeps a P's page cache.
  void release_pages();
  // Marks the slots of every run not handed out yet (allocate-black for the objects it
  // will hand out during the mark): at mark start, world stopped. Returns their bytes.
  uint64_t blacken_runs();
  // The tiny allocator's current block: the 16 B block its cursor is inside, which holds
  // objects and takes the next ones, or 0 when the cursor is at a block boundary.
  uintptr_t tiny_block() const {
    uintptr_t next = run[tricolor_tiny_span_class_].next;
    return next % kTinySize ? next - next % kTinySize : 0;
  }
};

// gc.h's inline fast paths index the runs and find the tiny allocator's run as the library
// does.
static_assert(kNumSpanClasses == tricolor_num_span_classes_);
static_assert(make_span_class(size_to_class(kTinySize), true) == tricolor_tiny_span_class_ &&
              kClassToSize[size_to_class(kTinySize)] == kTinySize);
static_assert(kSmallSizeMax - 8 == 1016 && kSmallSizeDiv == 8 && kLargeSizeDiv == 128 &&
              kSmallSizeMax - kLargeSizeDiv + 1 == 897 && kMaxSmallSize == 32768);

// The empty span every mcache slot points to when it caches nothing: its alloc_cache is 0
// and nelems 0, so the fast path falls to refill without a null check.
mspan* empty_span();

// Global allocation counters (added to from mcaches in steps of kCounterFlushBytes,
// mcache::pending, and whole at mark termination).
struct AllocCounters {
  std::atomic<uint64_t> total_alloc{0};   // bytes
  std::atomic<uint64_t> freed_bytes{0};
  std::atomic<uint64_t> mallocs{0};
  std::atomic<uint64_t> frees{0};
  std::atomic<uint64_t> tiny_allocs{0};
  std::atomic<uint64_t> class_mallocs[kNumSizeClasses];
  std::atomic<uint64_t> class_frees[kNumSizeClasses];
  // The pacer's heap_live: bytes marked last cycle plus span-granular allocation since.
  std::atomic<uint64_t> heap_live{0};
  // A new heap (gc_init after gc_shutdown) starts from zero; no allocating thread exists.
  void reset() {
    for (auto* a : {&total_alloc, &freed_bytes, &mallocs, &frees, &tiny_allocs, &heap_live})
      a->store(0, std::memory_order_relaxed);
    for (auto& a : class_mallocs) a.store(0, std::memory_order_relaxed);
    for (auto& a : class_frees) a.store(0, std::memory_order_relaxed);
  }
};
AllocCounters& alloc_counters();

}  // namespace tricolor::internal
