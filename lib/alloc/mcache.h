// mcache: the per-thread (per-P) cache of spans, one per span class, and the tiny
// allocator's block. No locks: only its owning thread touches it, except the collector
// with the world stopped (flush at mark termination, tiny blocks at mark start).
#pragma once

#include <cstdint>

#include "alloc/mspan.h"

namespace tricolor::internal {

struct mcache {
  mspan* alloc[kNumSpanClasses];  // never null: the empty dummy span when nothing cached
  uintptr_t tiny = 0;             // current 16 B tiny block (a heap object) or 0
  uintptr_t tiny_offset = 0;
  uint64_t tiny_allocs = 0;       // flushed to the global statistics
  // Bytes handed out since the last allocation sample (heap trace): a span's free space is
  // charged when it is cached and the slots still free are taken back when it is released,
  // so the sample weights add up to the bytes really allocated. Signed: a release may take
  // back more than was charged since the last sample.
  int64_t sample_bytes = 0;

  void init();
  // Replaces the (full) span of class sc with one that has a free slot; nullptr when the
  // heap cannot supply one (memory limit or OS).
  mspan* refill(SpanClass sc);
  // Returns every cached span to its mcentral and flushes counters (world stopped or
  // the owning thread).
  void release_all();
};

// The empty span every mcache slot points to when it caches nothing: its alloc_cache is 0
// and nelems 0, so the fast path falls to refill without a null check.
mspan* empty_span();

// Global allocation counters (flushed from mcaches at span granularity).
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
