// mcache: see mcache.h.
#include "alloc/mcache.h"

#include <iterator>

#include "alloc/mheap.h"
#include "trace/log.h"

namespace tricolor::internal {

namespace {
mspan g_empty_span;  // all zero: alloc_cache 0, nelems 0
AllocCounters g_counters;
}  // namespace

mspan* empty_span() { return &g_empty_span; }
AllocCounters& alloc_counters() { return g_counters; }

void mcache::init() {
  for (auto& r : run) r = Run{};
  for (auto& e : run_end) e = 0;
  for (auto& ty : slow_type) ty = kNoRunType;
  for (auto& n : slow_next) n = 0;
  for (auto& s : alloc) s = &g_empty_span;
  tiny_allocs = 0;
  black_lo = black_hi = 0;
  sample_bytes = 0;
}

// Go's releaseAll accounting, into the pending counters.
uint64_t mcache::account_uncache(mspan* s) {
  uint32_t n = s->alloc_count - s->alloc_count_before_cache;
  count_allocs(s->size_class(), n, uint64_t(n) * s->elemsize);
  return uint64_t(s->nelems - s->alloc_count) * s->elemsize;
}

void mcache::flush_counters() {
  auto& c = g_counters;
  // Relaxed: statistics counters, no ordering with other data; but total_alloc is
  // released after the spans' pages were counted in use (see gc_read_stats).
  if (pending.mallocs) {
    c.mallocs.fetch_add(pending.mallocs, std::memory_order_relaxed);
    c.total_alloc.fetch_add(pending.bytes, std::memory_order_release);
    for (size_t w = 0; w < std::size(pending.class_mask); w++)
      for (uint64_t m = pending.class_mask[w]; m != 0; m &= m - 1) {
        size_t cls = w * 64 + size_t(__builtin_ctzll(m));
        c.class_mallocs[cls].fetch_add(pending.class_mallocs[cls], std::memory_order_relaxed);
        pending.class_mallocs[cls] = 0;
      }
    for (uint64_t& m : pending.class_mask) m = 0;
  }
  // Relaxed: the pacer's estimate. Two's complement: a negative delta subtracts.
  if (pending.live) c.heap_live.fetch_add(uint64_t(pending.live), std::memory_order_relaxed);
  pending.mallocs = pending.bytes = pending.charged = 0;
  pending.live = 0;
}

mspan* mcache::refill(SpanClass sc) {
  mspan* old = alloc[sc];
  if (old != &g_empty_span) {
    uint64_t unused = account_uncache(old);
    sample_bytes -= int64_t(unused);
    pending.live -= int64_t(unused);
    alloc[sc] = &g_empty_span;
  } else {
    old = nullptr;
  }
  // The old span is filed under the lock hold that takes the new one.
  mspan* s = heap().central(sc).cache_span(&pages, old);
  if (!s) return nullptr;
  // Charge the pacer for the whole span's free space up front (Go, issue 53738).
  charge(int64_t(uint64_t(s->nelems - s->alloc_count) * s->elemsize));
  alloc[sc] = s;
  return s;
}

void mcache::release_pages() { heap().flush_page_cache(&pages); }

uint64_t mcache::blacken_runs() {
  uint64_t bytes = 0;
  for (int sc = 0; sc < kNumSpanClasses; sc++) {
    Run& r = run[sc];
    uintptr_t end = end_of_run(sc);
    if (r.next >= end) continue;
    mspan* s = alloc[sc];
    uint32_t first = s->object_index(r.next);
    s->mark_range(first, s->freeindex - first);
    bytes += end - r.next;
  }
  return bytes;
}

uint64_t mcache::release_all(bool give_back) {
  uint64_t given = 0;
  mspan* spans[kNumSpanClasses];
  for (int sc = 0; sc < kNumSpanClasses; sc++) {
    mspan* s = alloc[sc];
    Run& r = run[sc];
    uintptr_t end = end_of_run(sc);
    if (give_back && r.next < end) {
      TRICOLOR_CHECK(s->object_base(s->freeindex) == end, "a run ends at its span's freeindex");
      // The tiny allocator's cursor may be inside a block that holds objects: the run's
      // free slots start at the next slot boundary.
      uint32_t first = s->object_index(r.next);
      if (s->object_base(first) != r.next) first++;
      s->give_back_run(first);
      given += end - s->object_base(first);
    }
    r = Run{};
    run_end[sc] = 0;
    spans[sc] = nullptr;
    if (s == &g_empty_span) continue;
    uint64_t unused = account_uncache(s);
    sample_bytes -= int64_t(unused);
    pending.live -= int64_t(unused);
    spans[sc] = s;
    alloc[sc] = &g_empty_span;
  }
  // Counted before the spans go back, where a sweep may free their objects.
  flush_counters();
  for (int sc = 0; sc < kNumSpanClasses; sc++)
    if (spans[sc]) heap().central(static_cast<SpanClass>(sc)).uncache_span(spans[sc]);
  g_counters.tiny_allocs.fetch_add(tiny_allocs, std::memory_order_relaxed);
  tiny_allocs = 0;
  return given;
}

}  // namespace tricolor::internal
