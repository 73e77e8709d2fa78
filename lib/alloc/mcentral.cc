// mcentral: see mcentral.h.
#include "alloc/mcentral.h"

#include "alloc/mheap.h"
#include "gc/sweep.h"
#include "trace/log.h"

namespace tricolor::internal {

uint32_t mcentral::heap_sweepgen() { return heap().sweepgen.load(std::memory_order_relaxed); }

bool mcentral::has_unswept() const {
  // Relaxed: a hint for the sweeper's loop; the lists are read under the lock.
  return unswept_count_.load(std::memory_order_relaxed) != 0;
}

size_t mcentral::span_count() {
  std::lock_guard<SpinMutex> g(lock_);
  return partial_[0].count + partial_[1].count + full_[0].count + full_[1].count;
}

bool mcentral::sweep_and_file(mspan* s, bool want_free) {
  uint32_t sg = heap().sweepgen.load(std::memory_order_relaxed);
  s->sweepgen.store(sg - 1, std::memory_order_relaxed);  // h-1: being swept
  // A span the caller will allocate from is kept even if the sweep empties it: freeing it
  // to the mheap and taking a new one there cost two trips through the heap lock, which
  // two P's sweeping and allocating the same class then contended for.
  SweepResult r = sweep_span(s, /*preserve=*/want_free);
  if (r == SweepResult::kFreed) return false;
  if (r == SweepResult::kPartial && want_free) return true;  // caller takes it
  s->sweepgen.store(sg, std::memory_order_relaxed);
  push_swept(s);
  return false;
}

void mcentral::file_swept_locked(mspan* s, uint32_t sg) {
  s->sweepgen.store(sg, std::memory_order_relaxed);
  if (s->alloc_count < s->nelems) {
    s->list = SpanList::kPartial;
    partial_[swept(sg)].push(s);
  } else {
    s->list = SpanList::kFull;
    full_[swept(sg)].push(s);
  }
}

void mcentral::push_swept(mspan* s) {
  if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  uint32_t sg = heap().sweepgen.load(std::memory_order_relaxed);
  std::lock_guard<SpinMutex> g(lock_);
  file_swept_locked(s, sg);
}

mspan* mcentral::cache_span(PageCache* pc, mspan* old) {
  uint32_t sg = heap().sweepgen.load(std::memory_order_relaxed);
  if (old && old->sweepgen.load(std::memory_order_relaxed) == sg + 1) {
    uncache_span(old);  // cached before this sweep began: swept first
    old = nullptr;
  }
  if (old && !used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  mspan* s = nullptr;
  {
    std::unique_lock<SpinMutex> g(lock_);
    if (old) {
      old->list = SpanList::kNone;
      file_swept_locked(old, sg);
    }
    s = partial_[swept(sg)].pop();
    // Unswept spans of this class are counted at mark termination (with the world stopped)
    // and only taken away after: once none is left, none comes until the next one, which
    // cannot pass this thread here. So a refill that finds none skips the sweeper count
    // (two read-modify-writes of a line every sweeper shares).
    if (!s && has_unswept()) {
      g.unlock();
      SweepActive active;  // before the pop of an unswept span: sweeping is not done meanwhile
      g.lock();
      s = partial_[swept(sg)].pop();
      // Sweep unswept spans of this class until one has room (Go's cacheSpan steps 2-3).
      for (int budget = kSpanBudget; !s && budget > 0; budget--) {
        mspan* u = partial_[unswept(sg)].pop();
        if (!u) u = full_[unswept(sg)].pop();
        if (!u) break;
        unswept_count_.fetch_sub(1, std::memory_order_relaxed);
        g.unlock();
        bool usable = sweep_and_file(u, true);
        // Relaxed: a statistic.
        sweep_stats().spans_swept_by_alloc.fetch_add(1, std::memory_order_relaxed);
        g.lock();
        if (usable) s = u;
      }
    }
  }
  if (!s) {
    // A new span, outside the sweeper count: growing the heap waits inside a collector wait
    // (mheap.cc), where a whole cycle may run. Counted as a sweeper meanwhile, this thread
    // held up that cycle's sweep termination, which waits for the sweepers with the world
    // stopped, while the wait's end waited for the world to restart. And the sweep
    // generation is read again after it: a mark termination during the wait advances it,
    // and a span stamped with the older one counted as cached before its sweep began, so
    // that its release swept it with the empty mark bits of a cycle it took no part in,
    // freeing every object allocated in it (test "[grow]").
    bool needzero = false;
    uint32_t cls = span_class_size(spanclass_);
    s = heap().alloc_span(kClassToNPages[cls], spanclass_, &needzero, pc);
    if (!s) return nullptr;
    sg = heap().sweepgen.load(std::memory_order_relaxed);
  }
  s->sweepgen.store(sg + 3, std::memory_order_relaxed);  // swept, then cached
  s->list = SpanList::kMCache;
  s->alloc_count_before_cache = s->alloc_count;
  s->refill_alloc_cache(s->freeindex);
  return s;
}

void mcentral::uncache_span(mspan* s) {
  uint32_t sg = heap().sweepgen.load(std::memory_order_relaxed);
  uint32_t ssg = s->sweepgen.load(std::memory_order_relaxed);
  s->list = SpanList::kNone;
  if (ssg == sg + 1) {
    SweepActive active;
    // Cached before this sweep began: sweep it now (Go's uncacheSpan).
    sweep_and_file(s, false);
    return;
  }
  push_swept(s);
}

bool mcentral::sweep_one() { return sweep_batch(1) != 0; }

size_t mcentral::sweep_batch(size_t n) {
  // Nothing to sweep: leave without joining the active sweepers, so that sweep_done and
  // finish_sweep (sweep termination, world stopped) need not wait for a sweeper that only
  // looked (and may be descheduled while it looks).
  if (!has_unswept()) return 0;
  // Counted in flight before the sweep generation is read: the next cycle's sweep
  // termination waits for this sweeper (sweep_done), so the generation cannot move on
  // before its spans are filed. Counted only once spans were taken, a sweeper that read
  // the generation and lost its CPU (it runs at nice 19) woke up a cycle later, took the
  // spans of the new swept lists for unswept ones and swept them again, with no marks:
  // live objects freed (test "a churn loop keeps the heap near its goal", 1 run in a few).
  SweepActive active;
  uint32_t sg = heap().sweepgen.load(std::memory_order_relaxed);
  mspan* batch[kSweepBatch];
  size_t k = 0;
  n = std::min(n, kSweepBatch);
  {
    std::lock_guard<SpinMutex> g(lock_);
    while (k < n) {
      mspan* u = partial_[unswept(sg)].pop();
      if (!u) u = full_[unswept(sg)].pop();
      if (!u) break;
      u->sweepgen.store(sg - 1, std::memory_order_relaxed);  // h-1: being swept (ours)
      batch[k++] = u;
    }
    unswept_count_.fetch_sub(uint32_t(k), std::memory_order_relaxed);
  }
  if (k == 0) return 0;
  size_t keep = 0;
  SweepTally tally;
  for (size_t i = 0; i < k; i++)
    if (sweep_span(batch[i], /*preserve=*/false, tally) != SweepResult::kFreed) batch[keep++] = batch[i];
  tally.flush();  // before `active` ends: a finished sweep's figures are complete
  if (keep == 0) return k;
  if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  std::lock_guard<SpinMutex> g(lock_);
  for (size_t i = 0; i < keep; i++) file_swept_locked(batch[i], sg);
  return k;
}

}  // namespace tricolor::internal
