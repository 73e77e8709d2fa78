// Sweeping: turns unmarked slots into free ones by swapping mark and alloc bits, frees
// empty spans and dead large objects. See lib/gc/README.md, "Sweeping", and the sweepgen
// table in lib/alloc/mspan.h.
#pragma once

#include <atomic>
#include <cstdint>

#include "alloc/mspan.h"

namespace tricolor::internal {

enum class SweepResult { kFreed, kPartial, kFull };

// Sweeps s, which the caller owns (popped from an unswept list, sweepgen h-1). A span left
// with no object is returned to the mheap (kFreed), unless `preserve` (an allocating
// thread that will fill it at once: kPartial, Go's sweep(preserve=true) in cacheSpan), or
// unless this cycle's sweep keeps emptied spans and objects were allocated in s since its
// last sweep (kPartial); otherwise the caller files it.
SweepResult sweep_span(mspan* s, bool preserve = false);

// What sweeps freed, counted locally and added to the shared counters (AllocCounters,
// SweepStats) by flush(): a batch of spans adds once, not once per span, to counters whose
// cache lines every sweeping CPU writes. All the spans of a tally are of one size class.
struct SweepTally {
  uint64_t spans = 0;
  uint64_t frees = 0;
  uint64_t bytes = 0;
  uint32_t cls = 0;
  void flush();
};
// sweep_span, counting into `tally` (the caller flushes it before its SweepActive ends).
SweepResult sweep_span(mspan* s, bool preserve, SweepTally& tally);

// Whether this cycle's sweep keeps the spans it empties in their classes (set at mark
// termination, world stopped). Go returns every span a sweep empties to the heap, and the
// next allocation of the class takes a span from the heap again: the heap lock, the page
// allocator, a new span's setup, and its pages cleared. In a program whose classes churn
// steadily (most objects die young) that was every span, every cycle. A span that held
// objects since its last sweep is likely to be wanted by its class again, so a cycle the
// heap's growth started keeps it, empty, for one cycle: if nothing is allocated in it
// before its next sweep, that sweep frees it. Cycles a program asks for (gc_collect,
// gc_free_os_memory), the periodic one, an out-of-memory one and one near the memory limit
// free every emptied span at once, as Go does.
void set_sweep_keeps_emptied(bool on);

// Sweepers in flight (mutators in mcentral::cache_span, the background sweeper): counted
// from before they pop a span until it is filed, so "no unswept span and no sweeper"
// means sweeping is done.
struct SweepActive {
  SweepActive();
  ~SweepActive();
};

// Sweeps every remaining span (called before a cycle starts, and by gc_collect).
// Sweeps every unswept span on the calling thread; returns how many. Others may still be
// sweeping the spans they took when it returns.
size_t sweep_leftovers();
void finish_sweep();
bool sweep_done();

// The background sweeper thread.
void start_background_sweeper();
void wake_background_sweeper();
void stop_background_sweeper();

struct SweepStats {
  std::atomic<uint64_t> spans_swept{0};
  // Of those, swept by an allocation needing a span (mcentral::cache_span: lazy sweeping).
  std::atomic<uint64_t> spans_swept_by_alloc{0};
  std::atomic<uint64_t> bytes_freed{0};
};
SweepStats& sweep_stats();

}  // namespace tricolor::internal
