// Sweeping: see sweep.h.
#include "os/cpu.h"
#include "gc/sweep.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "alloc/poison.h"
#include "gc/thread.h"
#include "os/bits.h"
#include "gc/collector.h"
#include "gc/testing.h"
#include "os/clock.h"
#include "trace/heaptrace.h"
#include "trace/log.h"


namespace tricolor::internal {

namespace {
std::atomic<int> g_active{0};
SweepStats g_stats;

std::mutex g_bg_mu;
std::condition_variable& g_bg_cv = *new std::condition_variable;  // leaked: waited on at exit
bool g_bg_work = false;
bool g_bg_stop = false;
std::atomic<bool> g_bg_hold{false};  // test_hold_background_sweeper
std::atomic<long> g_bg_tid{0};       // test_background_sweeper_tid
std::thread* g_bg_thread = nullptr;  // heap-allocated: see collector.cc
// Relaxed: written with the world stopped, read by sweepers after it restarts.
std::atomic<bool> g_keep_emptied{false};
}  // namespace

void set_sweep_keeps_emptied(bool on) { g_keep_emptied.store(on, std::memory_order_relaxed); }

SweepStats& sweep_stats() { return g_stats; }
SweepActive::SweepActive() { g_active.fetch_add(1, std::memory_order_seq_cst); }
SweepActive::~SweepActive() { g_active.fetch_sub(1, std::memory_order_seq_cst); }

void SweepTally::flush() {
  // Relaxed: statistics.
  if (spans) g_stats.spans_swept.fetch_add(spans, std::memory_order_relaxed);
  if (frees) {
    auto& c = alloc_counters();
    c.frees.fetch_add(frees, std::memory_order_relaxed);
    c.class_frees[cls].fetch_add(frees, std::memory_order_relaxed);
    // Release: gc_read_stats reads the pages in use after the bytes allocated and before
    // the bytes freed, so that a snapshot never shows more bytes allocated than pages in
    // use (sweep_span flushes before it frees the span's pages).
    c.freed_bytes.fetch_add(bytes, std::memory_order_release);
    g_stats.bytes_freed.fetch_add(bytes, std::memory_order_relaxed);
  }
  spans = frees = bytes = 0;
}

SweepResult sweep_span(mspan* s, bool preserve) {
  SweepTally tally;
  SweepResult r = sweep_span(s, preserve, tally);
  tally.flush();
  return r;
}

namespace {
// The calling thread's page cache (freed spans go back to it, mheap::free_span), or
// nullptr on a thread that is not attached (the controller, the background sweeper).
PageCache* own_page_cache() {
  ThreadState* t = current_thread();
  return t ? &t->cache.pages : nullptr;
}
}  // namespace

SweepResult sweep_span(mspan* s, bool preserve, SweepTally& tally) {
  uint32_t cls = s->size_class();
  tally.cls = cls;
  tally.spans++;
  // Heap-trace samples: the span's count is one load; only a span holding a sampled
  // object looks its records up, before the mark bits become the alloc bits.
  if (__builtin_expect(s->nsampled != 0, 0)) trace_sweep_samples(s);
  if (cls == 0) {
    if (s->mark_bits[0] & 1) {
      __atomic_store_n(&s->mark_bits[0], 0, __ATOMIC_RELAXED);  // gc_base reads it
      return SweepResult::kFull;
    }
    tally.frees++;
    tally.bytes += s->elemsize;
    // Cleared here, as a small span that dies whole (below), when the clear is short: the
    // next large object or span on these pages then needs none, and the clearing happens
    // on the sweeper's thread rather than on the allocating one (bdwgc clears a large
    // object at allocation, Go at allocation when the span needs it).
    size_t bytes = s->npages * kPageSize;
    bool zeroed = !TRICOLOR_STRESS && bytes <= kClearInPlaceBytes;
    if (zeroed) memset(reinterpret_cast<void*>(s->start), 0, bytes);
    tally.flush();  // the bytes freed before the pages (see SweepTally::flush)
    heap().free_span(s, own_page_cache(), zeroed);
    return SweepResult::kFreed;
  }
  uint32_t nw = s->nwords_bits();
  uint32_t nalloc = 0;
  // Whether every free slot of the span reads as zero after this sweep if it clears the
  // objects that died: the span's pages were clean when it was set up, or every slot has
  // been handed out (and so cleared by take_run) since. Stress builds fill freed objects
  // with a pattern instead and keep clearing at allocation.
  const bool clean = !TRICOLOR_STRESS && (!s->needzero || s->freeindex == s->nelems);
  if (s->freeindex == s->nelems) s->fresh = false;  // every slot written: its pages resident
  // Slots below freeindex were allocated even if their alloc bit is clear (INV-SPAN-2):
  // fold them into the alloc bits first, so "allocated and unmarked" is exact.
  // Word by word with relaxed atomic stores: gc_base may read the bits concurrently, and
  // bits are only added here.
  for (uint32_t w = 0; w * 64 < s->freeindex; w++) {
    uint32_t n = s->freeindex - w * 64;
    uint64_t below = n >= 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
    __atomic_store_n(&s->alloc_bits[w], s->alloc_bits[w] | below, __ATOMIC_RELAXED);
  }
  for (uint32_t w = 0; w < nw; w++) nalloc += __builtin_popcountll(s->mark_bits[w]);
  uint32_t had = s->alloc_count;  // objects allocated since the last sweep, and survivors
  uint32_t nfreed = had - nalloc;
  // An emptied span is kept for its class when this cycle's sweep keeps them (see
  // set_sweep_keeps_emptied) and it held objects; one already empty at its last sweep went
  // unused for a whole cycle and is freed.
  const bool free_it = nalloc == 0 && !preserve && !(had != 0 && g_keep_emptied.load(std::memory_order_relaxed));
  // The dead objects of a span that stays are cleared here, as bdwgc clears what it
  // reclaims (GC_reclaim_clear), so that the allocation runs taken from it need no memset:
  // the background sweeper does it off the program's threads, where Go clears at
  // allocation (needzero). A span that goes back to the mheap is cleared whole below.
  if (nfreed != 0 && (TRICOLOR_STRESS || (clean && !free_it))) {  // (free_it: below)
    if (!TRICOLOR_STRESS && nalloc == 0) {
      memset(reinterpret_cast<void*>(s->start), 0, size_t(s->nelems) * s->elemsize);
    } else {
      for (uint32_t w = 0; w < nw; w++) {
        // Runs of dead neighbours, one memset each.
        for_each_bit_run(s->alloc_bits[w] & ~s->mark_bits[w], [&](unsigned i, unsigned n) {
          uintptr_t p = s->object_base(w * 64 + i);
          size_t bytes = size_t(n) * s->elemsize;
          if (TRICOLOR_STRESS)
            poison_freed(p, bytes);  // alloc/poison.h
          else
            memset(reinterpret_cast<void*>(p), 0, bytes);
        });
      }
    }
  }
  // The mark bits become the alloc bits, copied in place word by word rather than by
  // swapping the arrays: gc_base/gc_size may run concurrently (INV-SPAN-3), and a reader
  // that loaded the alloc_bits pointer before a swap would read the array being cleared,
  // taking a live object for a free slot. In place, each word it reads is the old or the
  // new one, and a live object's bit is set in both.
  for (uint32_t w = 0; w < nw; w++) {
    __atomic_store_n(&s->alloc_bits[w], s->mark_bits[w], __ATOMIC_RELAXED);
    __atomic_store_n(&s->mark_bits[w], 0, __ATOMIC_RELAXED);  // mark_bit() reads it
  }
  s->freeindex = 0;
  // Release: a reader that sees freeindex_for_scan 0 sees the new alloc bits.
  s->freeindex_for_scan.store(0, std::memory_order_release);
  s->alloc_count = nalloc;
  s->refill_alloc_cache(0);
  if (nfreed) {
    tally.frees += nfreed;
    tally.bytes += uint64_t(nfreed) * s->elemsize;
  }
  if (free_it) {
    // Its pages are cleared here too, whole (slots never handed out and the tail may hold
    // what the pages held before), so that the span that takes them next, of any class,
    // needs no memset either: the clearing stays off the allocating threads when the
    // background sweeper (or gc_collect's caller) frees the span. Stress builds poison
    // freed pages instead.
    bool zeroed = !TRICOLOR_STRESS;
    if (zeroed) memset(reinterpret_cast<void*>(s->start), 0, s->npages * kPageSize);
    tally.flush();  // the bytes freed before the pages (see SweepTally::flush)
    heap().free_span(s, own_page_cache(), zeroed);
    return SweepResult::kFreed;
  }
  // Cleared above (or nothing died in a span already clean): no run needs a memset.
  if (clean) s->needzero = false;
  else if (nfreed) s->needzero = true;
  return nalloc < s->nelems ? SweepResult::kPartial : SweepResult::kFull;
}

bool sweep_done() {
  if (g_active.load(std::memory_order_seq_cst) != 0) return false;
  for (int sc = 0; sc < kNumSpanClasses; sc++)
    if (heap().central(static_cast<SpanClass>(sc)).has_unswept()) return false;
  return g_active.load(std::memory_order_seq_cst) == 0;
}

size_t sweep_leftovers() {
  size_t n = 0;
  for (int sc = 0; sc < kNumSpanClasses; sc++)
    while (heap().central(static_cast<SpanClass>(sc)).sweep_one()) n++;
  return n;
}

void finish_sweep() {
  sweep_leftovers();
  while (g_active.load(std::memory_order_seq_cst) != 0) sched_yield();
}

void start_background_sweeper() {
  g_bg_stop = false;
  g_bg_thread = new std::thread([] {
    // The lowest priority (nice 19, this thread only): Go's bgsweep yields its P whenever
    // other goroutines want to run (goschedIfBusy), so that it uses only idle CPU time.
    // At normal priority it took a CPU from a mutator thread when the mutators kept every
    // CPU busy, and a stop of the world then waited for that mutator to get a CPU back:
    // binary-trees 21 on two threads had its p99 pause over 50 us in 11 runs of 22 and a
    // pause over 100 us in 5, against 5 and 6 of 60 at nice 19 (perf/README.md). The
    // sweep does not depend on this thread: allocations sweep the spans of their class
    // (mcentral::cache_span) and the next cycle's start sweeps what is left (finish_sweep).
    // The cost: that start waits for the batch this thread holds, which may wait for a CPU
    // while the program's threads keep every CPU busy (3 runs: 88 waits over 100 us in 313
    // cycle starts, the longest 0.9 ms, 0.35% of the run in all; at most 71 us at normal
    // priority). That is before the stop of the world, so not a pause, but the thread that
    // starts the cycle waits.
    // Failure (a platform without per-thread nice) leaves it at normal priority.
    set_thread_name("tricolor-sweep");
    long tid = syscall(SYS_gettid);
    setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 19);
    g_bg_tid.store(tid, std::memory_order_release);
    for (;;) {
      {
        std::unique_lock<std::mutex> g(g_bg_mu);
        g_bg_cv.wait(g, [] { return g_bg_work || g_bg_stop; });
        if (g_bg_stop) return;
        g_bg_work = false;
      }
      // Acquire: pairs with the release store of the hook (a test setting).
      while (g_bg_hold.load(std::memory_order_acquire))
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      uint64_t cycle = cycles_marked();  // the cycle whose leftovers this pass sweeps
      uint64_t cpu0 = thread_cpu_ns();
      // Sweep class by class in small batches (Go's bgsweep, batches of 10 spans). While
      // gc_run runs and every P runs a fiber, the sweeper steps back between batches, as
      // Go's bgsweep yields its P to busy goroutines: the fibers sweep what they allocate
      // from (cache_span) and the rest before the next cycle (start_cycle_from_allocation),
      // so that the heap uses `procs` CPUs, not one more beside them (and does not take a
      // CPU from a fiber that a stop of the world then waits for).
      bool any = true;
      int batches = 0;
      while (any) {
        any = false;
        for (int sc = 0; sc < kNumSpanClasses; sc++) {
          bool swept = heap().central(static_cast<SpanClass>(sc)).sweep_batch(10) != 0;
          any |= swept;
          if (swept && ++batches % 4 == 0 && sched_procs_busy())
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
      while (g_active.load(std::memory_order_seq_cst) != 0) sched_yield();
      on_sweep_done(cycle, thread_cpu_ns() - cpu0);
    }
  });
}

void wake_background_sweeper() {
  {
    std::lock_guard<std::mutex> g(g_bg_mu);
    g_bg_work = true;
  }
  g_bg_cv.notify_one();
}

long test_background_sweeper_tid() { return g_bg_tid.load(std::memory_order_acquire); }

void test_hold_background_sweeper(bool on) { g_bg_hold.store(on, std::memory_order_release); }

void stop_background_sweeper() {
  {
    std::lock_guard<std::mutex> g(g_bg_mu);
    g_bg_stop = true;
  }
  g_bg_cv.notify_one();
  if (g_bg_thread) {
    g_bg_thread->join();
    delete g_bg_thread;
    g_bg_thread = nullptr;
  }
}

}  // namespace tricolor::internal
