// gc_read_stats and gc_read_class_stats: statistics without stopping the world.
// Counters are flushed from mcaches every kCounterFlushBytes of spans (mcache::pending;
// every mcache is flushed at mark termination), so right after gc_collect the figures are
// exact.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "gc/collector.h"
#include "os/clock.h"
#include "tricolor/gc.h"

using namespace tricolor::internal;

extern "C" void gc_read_stats(gc_stats* s) {
  if (!s) return;
  memset(s, 0, sizeof *s);
  if (!ever_initialized()) return;  // no heap yet: every figure zero (docs/misuse.md)
  auto& c = alloc_counters();
  auto& h = heap();
  auto& cs = collector_stats();
  // Relaxed loads, but for one order: heap_inuse >= heap_alloc holds in every snapshot.
  // Pages are counted in use before the bytes allocated in them, and the bytes swept are
  // counted freed before their pages are freed (release); so the bytes allocated are read
  // first, then the pages, then the bytes freed (acquire).
  uint64_t tiny = c.tiny_allocs.load(std::memory_order_relaxed);
  uint64_t total = c.total_alloc.load(std::memory_order_acquire);
  uint64_t inuse_pages = h.counters.pages_inuse.load(std::memory_order_acquire);
  uint64_t freed = c.freed_bytes.load(std::memory_order_acquire);
  s->total_alloc = total;
  s->heap_alloc = total > freed ? total - freed : 0;
  // Go counts each tiny sub-allocation as both a malloc and a free.
  s->mallocs = c.mallocs.load(std::memory_order_relaxed) + tiny;
  s->frees = c.frees.load(std::memory_order_relaxed) + tiny;
  s->heap_objects = s->mallocs > s->frees ? s->mallocs - s->frees : 0;
  s->heap_sys = h.counters.heap_sys.load(std::memory_order_relaxed);
  s->heap_inuse = inuse_pages * kPageSize;
  s->heap_idle = s->heap_sys > s->heap_inuse ? s->heap_sys - s->heap_inuse : 0;
  s->heap_released = std::min(h.counters.heap_released.load(std::memory_order_relaxed), s->heap_idle);
  Pacer p = pacer_snapshot();
  s->next_gc = p.goal == Pacer::kNoGoal ? 0 : p.goal;
  s->trigger = p.trigger == Pacer::kNoGoal ? 0 : p.trigger;
  s->heap_marked = p.heap_marked;
  s->heap_live = c.heap_live.load(std::memory_order_relaxed);
  s->gc_percent = p.gc_percent;
  s->memory_limit = p.memory_limit;
  s->last_gc_ns = cs.last_gc_unix_ns.load(std::memory_order_relaxed);
  s->num_gc = cs.num_gc.load(std::memory_order_acquire);
  s->num_forced_gc = cs.num_forced_gc.load(std::memory_order_relaxed);
  s->pause_total_ns = cs.pause_total_ns.load(std::memory_order_relaxed);
  s->pause_max_ns = cs.pause_max_ns.load(std::memory_order_relaxed);
  memcpy(s->pause_ns, cs.pause_ns, sizeof s->pause_ns);
  memcpy(s->pause_end_ns, cs.pause_end_ns, sizeof s->pause_end_ns);
  s->gc_cpu_ns = cs.gc_cpu_ns.load(std::memory_order_relaxed);
  s->assist_ns = cs.assist_ns.load(std::memory_order_relaxed);
  s->idle_mark_ns = cs.idle_mark_ns.load(std::memory_order_relaxed);
  s->mark_ns = cs.mark_ns.load(std::memory_order_relaxed);
  s->mark_worker_ns = cs.mark_worker_ns.load(std::memory_order_relaxed);
  uint64_t wall = monotonic_ns() - cs.start_ns;
  int procs = configured_procs();
  s->procs = procs;
  // Go's GCCPUFraction: idle marking is left out (it used CPU no mutator wanted).
  uint64_t counted = s->gc_cpu_ns - std::min(s->gc_cpu_ns, s->idle_mark_ns);
  s->gc_cpu_fraction = wall ? double(counted) / (double(wall) * procs) : 0;
  s->stacks = stacks_live();
}

namespace {
// Reads the counters of a span another thread may be allocating from: racy by design (a
// statistic, exact once the span is back in its mcentral), so not instrumented by TSan.
__attribute__((no_sanitize("thread"))) void count_span(gc_class_stats* all, const mspan* s) {
  gc_class_stats& e = all[s->size_class()];
  // A large span in use holds its one object: its count is 0 only for an instant, between
  // the span's publication and the allocation's count, or between the sweep that frees the
  // object and the span's release; read then, it showed a free large object.
  uint32_t n = s->size_class() == 0 ? 1 : s->alloc_count;
  e.spans++;
  e.objects += n;
  e.bytes_free += uint64_t(s->nelems - std::min(n, s->nelems)) * s->elemsize;
}
}  // namespace

extern "C" int gc_read_class_stats(gc_class_stats* out, int max) {
  gc_class_stats all[kNumSizeClasses];
  memset(all, 0, sizeof all);
  for (int c = 0; c < kNumSizeClasses; c++) {
    all[c].size_class = static_cast<uint32_t>(c);
    all[c].object_size = kClassToSize[c];
    all[c].mallocs = alloc_counters().class_mallocs[c].load(std::memory_order_relaxed);
    all[c].frees = alloc_counters().class_frees[c].load(std::memory_order_relaxed);
  }
  heap().for_each_span_chunked([&](mspan* s) { count_span(all, s); });
  if (out)
    for (int c = 0; c < std::min(max, kNumSizeClasses); c++) out[c] = all[c];
  return kNumSizeClasses;
}
