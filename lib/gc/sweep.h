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
// thread that will fill it at once: kPartial, Go's sweep(preserve=true) in cacheSpan);
// otherwise the caller files it.
SweepResult sweep_span(mspan* s, bool preserve = false);

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
