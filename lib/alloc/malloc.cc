// gc_alloc and friends: the allocation paths. See lib/alloc/README.md for the overview.
//
// Small object (<= 32 KiB), cost with a cached span and no GC running: a TLS load, the
// size-class lookup (one table load), Go's nextFreeFast (ctz + a few ALU ops), the zeroing
// of a reused slot, and for scan objects a compare with the span's uniform pointer bits
// (INV-SPAN-4; the heap-bit words are written only in spans of mixed layouts).
// The allocation paths keep no frame pointer, whatever the build (meson.build adds
// -fno-omit-frame-pointer for profiles): setting one up made the fast path save and restore
// four registers per allocation.
#pragma GCC optimize("omit-frame-pointer")

#include <cstring>

#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "alloc/poison.h"
#include "alloc/types.h"
#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/thread.h"
#include "tricolor/gc.h"
#include "trace/log.h"

namespace tricolor::internal {
namespace {

inline constexpr size_t kMaxAlloc = size_t{1} << 46;  // beyond any address space we map

[[gnu::cold, gnu::noinline]] void* unattached_alloc(size_t size) {
  if (!collector_initialized())
    log_error("gc_alloc(%zu) before gc_init (or after gc_shutdown): returns NULL", size);
  else
    log_error("gc_alloc(%zu) from a thread that is not attached; call gc_thread_attach() "
              "first: returns NULL", size);
  return nullptr;
}

[[gnu::cold, gnu::noinline]] void* absurd_size(size_t size) {
  log_error("gc_alloc(%zu): the size is beyond what the heap can hold: returns NULL", size);
  return nullptr;
}

inline void publish(mspan* s, uint32_t idx) {
  (void)idx;
  // Objects allocated while marking are black (INV-MARK-2).
  if (__builtin_expect(__atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) != 0, 0))
    mark_new_object(s, idx);
  // Release: the zeroed slot and its heap bits are visible before a scanner may treat the
  // slot as allocated (INV-SPAN-3); also orders the zeroing before the caller publishes
  // the pointer on weakly ordered CPUs.
  s->freeindex_for_scan.store(s->freeindex, std::memory_order_release);
}

[[gnu::noinline]] mspan* refill_slow(ThreadState* t, SpanClass sc, const gc_type* type,
                                    size_t size, int64_t* idx) {
  mspan* s = t->cache.alloc[sc];
  *idx = s->next_free_index();  // the span may still have free slots past its cache
  if (*idx >= 0) return s;
  ThreadPin pin(t);  // t is used after the hook: the fiber must stay on this thread
  alloc_slow_hook(t, size_t(kClassToNPages[span_class_size(sc)]) * kPageSize);
  s = t->cache.refill(sc);
  if (!s) {
    collect_for_oom();
    s = t->cache.refill(sc);
    if (!s) return nullptr;
  }
  t->cache.sample_bytes += int64_t(s->nelems - s->alloc_count) * s->elemsize;
  *idx = s->next_free_index();
  TRICOLOR_CHECK(*idx >= 0, "a refilled span has no free slot");
  // The sample is the object this allocation returns (the first of the new span).
  if (t->cache.sample_bytes >= int64_t(kSampleBytes))
    sample_allocation(t, s, s->object_base(static_cast<uint32_t>(*idx)), type, size);
  return s;
}

// Clears a reused slot of at most kInlineZeroMax bytes with 16-byte stores (slots of 16 B
// and more are 16-byte aligned; the 8 B class is one word). A call to memset costs more
// than the stores themselves at these sizes.
inline constexpr uint32_t kInlineZeroMax = 256;
static_assert(kInlineZeroMax < kMaxHeapBitsElem, "the fast path relies on heap bits and uniform_bits (INV-SPAN-4)");
constexpr bool inline_zeroed_classes_are_16_byte_multiples() {
  for (uint32_t size : kClassToSize)
    if (size > 8 && size <= kInlineZeroMax && size % 16 != 0) return false;
  return true;
}
static_assert(inline_zeroed_classes_are_16_byte_multiples(), "zero_small_slot stores 16 B at a time");
inline void zero_small_slot(uintptr_t p, uint32_t n) {
  if (n == 8) {
    *reinterpret_cast<uint64_t*>(p) = 0;
    return;
  }
  using V = long long __attribute__((vector_size(16)));
  for (uintptr_t q = p, end = p + n; q < end; q += 16) {
    asm("" : "+r"(q));  // keeps the compiler from turning the loop into memset or rep stos
    *reinterpret_cast<V*>(q) = V{0, 0};
  }
}

// Everything after a slot has been taken, for every case: clearing, the pointer map, the
// allocate-black mark, publication.
// type: nullptr for gc_alloc(n, NULL) (the conservative type).
[[gnu::noinline]] void* finish_small(mspan* s, uint32_t idx, const gc_type* type, bool noscan) {
  if (!type) type = conservative_type();
  uintptr_t p = s->object_base(idx);
  unpoison_for_reuse(p, s->elemsize);  // stress + ASan builds only (alloc/poison.h)
  if (s->needzero) {
    if (s->elemsize <= kInlineZeroMax) zero_small_slot(p, s->elemsize);
    else memset(reinterpret_cast<void*>(p), 0, s->elemsize);
  }
  if (!noscan) {
    if (s->heap_bits) s->set_heap_bits(idx, type->tile64);
    else __atomic_store_n(&s->obj_types[idx], type, __ATOMIC_RELAXED);  // see mspan.h
  }
  publish(s, idx);
  return reinterpret_cast<void*>(p);
}

// The cached span is full (or there is none): refill, then finish.
// The span class is computed again here rather than passed: one register fewer live across
// the fast path (which then needs no callee-saved register).
[[gnu::noinline]] void* alloc_small_slow(ThreadState* t, size_t size, const gc_type* type,
                                         bool noscan) {
  SpanClass sc = make_span_class(size_to_class(size), noscan);
  if (!noscan && !type) type = conservative_type();
  int64_t idx;
  mspan* s = refill_slow(t, sc, type, size, &idx);
  if (!s) return out_of_memory(size);
  return finish_small(s, static_cast<uint32_t>(idx), type, noscan);
}

// The fast path makes no call except as its last act (a tail call), so the compiler needs
// no stack frame and no callee-saved register for it: a slot from the cached span, then,
// in the common case (no mark running, a slot of at most kInlineZeroMax bytes, and for a
// scan slot pointer bits equal to the span's uniform bits, INV-SPAN-4), the clearing and
// the publication inline. Anything else goes to finish_small.
inline void* alloc_small(ThreadState* t, size_t size, const gc_type* type, bool noscan) {
  uint32_t cls = size_to_class(size);
  SpanClass sc = make_span_class(cls, noscan);
  mspan* s = t->cache.alloc[sc];
  int64_t idx = s->next_free_fast();
  if (__builtin_expect(idx < 0, 0)) return alloc_small_slow(t, size, type, noscan);
  uint32_t i = static_cast<uint32_t>(idx);
  uint32_t n = s->elemsize;
  // n <= kInlineZeroMax < 512: a scan span has heap bits, and uniform_bits is a pattern or
  // a state that no masked pattern equals. A NULL type is the conservative one: all pointers.
  bool same_bits = noscan || ((type ? type->tile64 : ~uint64_t{0}) & s->obj_word_mask) ==
                                 s->uniform_bits.load(std::memory_order_relaxed);
  if (TRICOLOR_STRESS || n > kInlineZeroMax || !same_bits ||
      __atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) != 0)
    return finish_small(s, i, type, noscan);
  uintptr_t p = s->start + uintptr_t(i) * n;
  if (s->needzero) zero_small_slot(p, n);
  // Release: as in publish (INV-SPAN-3).
  s->freeindex_for_scan.store(s->freeindex, std::memory_order_release);
  return reinterpret_cast<void*>(p);
}

// Clears a large object's span before it is published. Clearing megabytes takes a
// millisecond and more, and a thread that does not reach a safepoint holds up a stop of the
// world that long (GCBench's 4 MiB array was a 1 ms mark termination). So a big clear runs
// inside a collector wait, a blocking region that keeps the fiber's P: the collector counts
// the thread as stopped and never waits for it. That is safe because the span is not
// published yet: its one slot is free (INV-SPAN-3), so no marker scans it and no
// conservative pointer into it counts, and no sweeper can see it before push_swept, which
// stamps it with the sweep generation current then, even if cycles ran meanwhile. (Go clears
// large objects in preemptible chunks, memclrNoHeapPointersChunked, for the same reason.)
void zero_large(mspan* s, size_t bytes) {
  constexpr size_t kClearInPlace = 256 << 10;
  if (bytes < kClearInPlace) {
    memset(reinterpret_cast<void*>(s->start), 0, bytes);
    return;
  }
  collector_wait_begin();
  memset(reinterpret_cast<void*>(s->start), 0, bytes);
  collector_wait_end();
}

[[gnu::noinline]] void* alloc_large(ThreadState* t, size_t size, const gc_type* type, bool noscan) {
  if (!noscan && !type) type = conservative_type();
  size_t npages = (size + kPageSize - 1) / kPageSize;
  ThreadPin pin(t);  // t is used after the hook: the fiber must stay on this thread
  alloc_slow_hook(t, npages * kPageSize);
  SpanClass sc = make_span_class(0, noscan);
  bool needzero = false;
  mspan* s = heap().alloc_span(npages, sc, &needzero);
  if (!s) {
    collect_for_oom();
    s = heap().alloc_span(npages, sc, &needzero);
    if (!s) return out_of_memory(size);
  }
  if (needzero) zero_large(s, npages * kPageSize);
  s->large_type = noscan ? nullptr : type;
  s->freeindex = 1;
  s->alloc_count = 1;
  s->alloc_cache = 0;
  publish(s, 0);
  auto& c = alloc_counters();
  // Relaxed: statistics and the pacer's heap_live estimate.
  c.heap_live.fetch_add(npages * kPageSize, std::memory_order_relaxed);
  c.total_alloc.fetch_add(npages * kPageSize, std::memory_order_relaxed);
  c.mallocs.fetch_add(1, std::memory_order_relaxed);
  c.class_mallocs[0].fetch_add(1, std::memory_order_relaxed);
  // Sampled before the span is filed: until then this thread owns it (mspan::nsampled).
  t->cache.sample_bytes += int64_t(npages * kPageSize);
  if (t->cache.sample_bytes >= int64_t(kSampleBytes)) sample_allocation(t, s, s->start, type, size);
  heap().central(sc).push_swept(s);  // the sweeper visits large spans on the full list
  return reinterpret_cast<void*>(s->start);
}

inline void* alloc_unpolled(ThreadState* t, size_t size, const gc_type* type, bool noscan) {
  if (size <= kMaxSmallSize) return alloc_small(t, size, type, noscan);
  if (size > kMaxAlloc) return absurd_size(size);
  return alloc_large(t, size, type, noscan);
}

// A safepoint has work (a stop of the world, this thread's stack scan): it is taken before
// the allocation takes a slot, then the allocation goes on. Every
// allocation is a safepoint, so a thread that allocates reaches one within one allocation,
// not only at its next span refill (tens of microseconds on a busy machine: most of the
// mark termination pause was the wait for the allocating thread).
// The allocator does not yield the fiber (thread.h, safepoint_slow); t is read again all
// the same, as after stress_alloc.
[[gnu::noinline]] void* alloc_polled(ThreadState* t, size_t size, const gc_type* type,
                                     bool noscan) {
  safepoint_slow(t, /*may_yield=*/false);
  return alloc_unpolled(tls_thread, size, type, noscan);
}

// The requests an allocation takes (safepoint_slow with may_yield false). A preemption
// request alone is left to the next gc_safepoint: it may stay set for as long as a fiber
// computes (sysmon sets it for fibers running over 10 ms), and every allocation took the
// slow path meanwhile (3% of binary-trees on fibers).
constexpr uint32_t kAllocPollMask = ~uint32_t{kPollPreempt};

inline void* alloc_any(size_t size, const gc_type* type, bool noscan) {
  ThreadState* t = tls_thread;
  if (__builtin_expect(t == nullptr, 0)) return unattached_alloc(size);
  if (__builtin_expect((__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) & kAllocPollMask) != 0, 0))
    return alloc_polled(t, size, type, noscan);
  return alloc_unpolled(t, size, type, noscan);
}

// The tiny allocator (Go's): noscan objects under 16 B share 16 B blocks.
inline void* alloc_tiny(ThreadState* t, size_t size) {
  mcache& c = t->cache;
  uintptr_t off = c.tiny_offset;
  if (size % 8 == 0) off = (off + 7) & ~uintptr_t{7};
  else if (size % 4 == 0) off = (off + 3) & ~uintptr_t{3};
  else if (size % 2 == 0) off = (off + 1) & ~uintptr_t{1};
  if (off + size <= kTinySize && c.tiny != 0) {
    c.tiny_offset = off + size;
    c.tiny_allocs++;
    return reinterpret_cast<void*>(c.tiny + off);
  }
  void* block = alloc_small(t, kTinySize, nullptr, true);
  if (!block) return nullptr;
  // Keep the block with more room left (Go's rule).
  if (size < c.tiny_offset || c.tiny == 0) {
    c.tiny = reinterpret_cast<uintptr_t>(block);
    c.tiny_offset = size;
  }
  return block;
}

}  // namespace
}  // namespace tricolor::internal

using namespace tricolor::internal;

extern "C" void* gc_alloc(size_t size, const gc_type* type) {
#if TRICOLOR_STRESS
  if (tls_thread) stress_alloc();
#endif
  // A NULL type (the conservative one) is resolved off the fast path.
  return alloc_any(size, type, type != nullptr && type->noscan);
}

extern "C" void* gc_alloc_noscan(size_t size) {
  ThreadState* t = tls_thread;
  if (__builtin_expect(t == nullptr, 0)) return unattached_alloc(size);
#if TRICOLOR_STRESS
  stress_alloc();
  t = tls_thread;  // a fiber may resume on another thread after the collection
#endif
  if (__builtin_expect((__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) & kAllocPollMask) != 0, 0)) {
    safepoint_slow(t, /*may_yield=*/false);  // as in alloc_polled
    t = tls_thread;
  }
  if (size < kTinySize && size > 0) return alloc_tiny(t, size);
  return alloc_unpolled(t, size, nullptr, true);
}

extern "C" void* gc_base(const void* p) {
  ObjRef r;
  if (!collector_initialized()) return nullptr;  // no heap yet: no page map to read
  if (!find_object(reinterpret_cast<uintptr_t>(p), &r)) return nullptr;
  return reinterpret_cast<void*>(r.span->object_base(r.idx));
}

extern "C" size_t gc_size(const void* p) {
  ObjRef r;
  if (!collector_initialized()) return 0;  // no heap yet: no page map to read
  if (!find_object(reinterpret_cast<uintptr_t>(p), &r)) return 0;
  return r.span->elemsize;
}
