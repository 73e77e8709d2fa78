// mcentral: all spans of one span class. See lib/alloc/README.md.
//
// Four lists, indexed by sweep generation as in Go (the roles flip every cycle without
// copying when the heap's sweepgen h grows by 2):
//   partial[swept(h)] / full[swept(h)]     swept spans with / without a free slot
//   partial[unswept(h)] / full[unswept(h)] spans still to sweep this cycle
// swept(h) = (h/2) % 2, unswept(h) = 1 - swept(h).
//
// Concurrency: `lock_` guards the lists. A span popped from an unswept list belongs to the
// popper, who sweeps it outside the lock (sweepgen h-2 -> h-1 -> h).
#pragma once

#include <cstdint>
#include <mutex>

#include "alloc/mspan.h"
#include "os/spin_mutex.h"

namespace tricolor::internal {

struct PageCache;

class mcentral {
 public:
  void init(SpanClass sc) { spanclass_ = sc; }
  // A swept span with at least one free slot, owned by the caller (an mcache), or nullptr
  // when the heap cannot grow. Sweeps up to kSpanBudget unswept spans on the way. A new
  // span takes its pages from pc, the caller's page cache.
  // old: the span the mcache gives back for this one (or nullptr), filed under the same
  // hold of the lock as the new span's pop when it needs no sweep (uncache_span otherwise).
  mspan* cache_span(PageCache* pc, mspan* old = nullptr);
  // Gives back a span an mcache held.
  void uncache_span(mspan* s);
  // Puts a large span (class 0) or a freshly swept span on the right swept list.
  void push_swept(mspan* s);
  // Sweeps one unswept span of this class (a batch of one); false when there is none left.
  bool sweep_one();
  // Sweeps up to n (at most kSweepBatch) unswept spans of this class, taking them all with
  // one hold of the lock and filing them all with another; returns how many. The
  // background sweeper's way: a lock taken twice per span on its CPU moved the lock's
  // line back and forth with the mutator refilling the same class on the other.
  static constexpr size_t kSweepBatch = 16;
  size_t sweep_batch(size_t n);
  // Moves nothing, but tells whether unswept spans remain (approximate, no lock).
  bool has_unswept() const;
  SpanClass spanclass() const { return spanclass_; }
  // Called with the world stopped right after the heap's sweepgen grew by 2: every span
  // on the lists is now unswept.
  // The background sweeper may still be looping (it finds nothing until now), so the
  // lists are read under the lock.
  void begin_sweep_cycle() {
    // A class that never held a span has nothing to count: most of the 134 in a program,
    // and taking their locks was a third of the mark-termination pause. `used_` is set by
    // push_swept, the one way into the lists, by a thread the stop has synchronised with.
    if (!used_.load(std::memory_order_relaxed)) return;
    std::lock_guard<SpinMutex> g(lock_);
    uint32_t sg = heap_sweepgen();
    // Relaxed: the count is a hint (has_unswept); the lock orders the lists.
    unswept_count_.store(partial_[unswept(sg)].count + full_[unswept(sg)].count,
                         std::memory_order_relaxed);
  }
  // Counts spans on every list (for statistics and the verifier), under the lock.
  size_t span_count();

  static constexpr int kSpanBudget = 100;  // Go's spanBudget in cacheSpan

 private:
  static uint32_t heap_sweepgen();
  static int swept(uint32_t sg) { return (sg / 2) % 2; }
  static int unswept(uint32_t sg) { return 1 - swept(sg); }
  // Sweeps s (owned, unlinked) and files it; returns true if s is usable by an mcache
  // (it had free slots and was not freed), in which case it is NOT filed.
  bool sweep_and_file(mspan* s, bool want_free);
  // Files swept span s on the partial or full list of sweepgen sg (lock held).
  void file_swept_locked(mspan* s, uint32_t sg);

  SpanClass spanclass_ = 0;
  SpinMutex lock_;
  SpanListHead partial_[2];
  SpanListHead full_[2];
  std::atomic<size_t> unswept_count_{0};
  std::atomic<bool> used_{false};  // a span has entered this class's lists (set once)
};

}  // namespace tricolor::internal
