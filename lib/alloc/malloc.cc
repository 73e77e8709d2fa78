// gc_alloc and friends: the allocation paths. See lib/alloc/README.md for the overview.
//
// Small object (<= 32 KiB), cost with a cached span: a TLS load, the poll word, the
// size-class lookup (one table load), and the bump of the class's allocation run
// (mcache::Run), whose slots were cleared, published and (during a mark) marked when the
// run was taken; a scan object's type is compared with the run's (INV-SPAN-4: no pointer
// bits to write).
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

const char* alloc_name(bool noscan) { return noscan ? "gc_alloc_noscan" : "gc_alloc"; }

// The allocation entry points' refusals: before gc_init or after gc_shutdown, from a thread
// that is not attached, inside a blocking region of the program's own.
[[gnu::cold, gnu::noinline]] void* refused_alloc(size_t size, bool noscan) {
  ThreadState* t = tls_thread;
  if (!collector_initialized())
    log_error("%s(%zu) %s: returns NULL", alloc_name(noscan), size,
              ever_initialized() ? "after gc_shutdown" : "before gc_init");
  else if (!t)
    log_error("%s(%zu) from a thread that is not attached; call gc_thread_attach() "
              "first: returns NULL", alloc_name(noscan), size);
  else
    log_error("%s(%zu) inside gc_blocking_begin/end (a blocking region touches no heap "
              "pointer; allocate before it or after it): returns NULL", alloc_name(noscan), size);
  return nullptr;
}

[[gnu::cold, gnu::noinline]] void* absurd_size(size_t size, bool noscan) {
  log_error("%s(%zu): the size is beyond what the heap can hold: returns NULL",
            alloc_name(noscan), size);
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

// The most a run takes (mcache::Run): the slots of kRunBytes, at least one. Clearing a
// run costs about what clearing its objects one by one did, and a run of 8 KiB (a whole
// span of the smallest classes) keeps the cleared memory in the L1 cache until the objects
// are handed out. Against 4 KiB: alloc-hot 16 B 0.85x, 64 B 0.88-0.94x, 256 B 0.84-0.88x,
// 8 B unchanged, binary-trees d20 0.96-0.99x (alternated pairs).
inline constexpr uint32_t kRunBytes = 8192;
// A run of at most this many slots has its type recorded for all of them when its first
// object of a type is handed out (alloc_small_slow): the runs of 512 B objects and larger,
// whose spans keep their objects' pointer bits one by one (the 64-word bitmap, or a type
// per object), so that each of their objects took the slow path.
inline constexpr uint32_t kPrimeSlots = kRunBytes / kMaxHeapBitsElem;
static_assert(kRunBytes / (kMaxHeapBitsElem + 1) <= kPrimeSlots);
// The chunk of a longer run of such a span (a mixed one, INV-SPAN-4) that gets a type's
// bits written ahead: one slow path per this many objects of the type in a row.
inline constexpr uint32_t kChunkSlots = 64;

// The smallest OS page (x86-64, arm64 with 4 KiB pages); where pages are larger, take_run
// touches one more than once, which costs a store.
inline constexpr uintptr_t kOsPageSize = 4096;

// The run of class sc is used up: takes the next one from the cached span, or from a new
// span when it is full (the pacer's hook, the refill, a collection if the heap is out of
// memory), then makes its slots ready to hand out. false: out of memory.
[[gnu::noinline]] bool take_run(ThreadState* t, SpanClass sc, const gc_type* type, size_t size) {
  mspan* s = t->cache.alloc[sc];
  uint32_t first = 0;
  uint32_t max = std::max<uint32_t>(1, kRunBytes / kClassToSize[span_class_size(sc)]);
  uint32_t n = s->take_run(max, &first);
  bool refilled = false;
  if (n == 0) {
    ThreadPin pin(t);  // t is used after the hook: the fiber must stay on this thread
    alloc_slow_hook(t, size_t(kClassToNPages[span_class_size(sc)]) * kPageSize);
    s = t->cache.refill(sc);
    if (!s) {
      collect_for_oom();
      s = t->cache.refill(sc);
      if (!s) return false;
    }
    t->cache.sample_bytes += int64_t(s->nelems - s->alloc_count) * s->elemsize;
    n = s->take_run(max, &first);
    TRICOLOR_CHECK(n > 0, "a refilled span has no free slot");
    refilled = true;
  }
  uintptr_t p = s->object_base(first);
  size_t bytes = size_t(n) * s->elemsize;
  unpoison_for_reuse(p, bytes);  // stress + ASan builds only (alloc/poison.h)
  if (s->needzero) {
    memset(reinterpret_cast<void*>(p), 0, bytes);
  } else if (s->fresh) {
    // Memory fresh from the OS (or released to it) reads as zero, but a page never
    // touched is mapped to the shared zero page by its first read, and the first write
    // after that is a second fault that copies it and, with the program's threads on
    // other CPUs, flushes their TLBs (an IPI to each). The write barrier reads a slot
    // before it writes it, as programs do: binary-trees on two threads took a fault and a
    // TLB shootdown for most pages of its heap. One store per page of the run makes the
    // first fault a write fault, which maps a zeroed page at once. Only on such pages: on
    // pages a sweep cleared (resident) the store was a cache miss a page, half of the time
    // of a 4 KiB allocation.
    for (uintptr_t a = p; a < p + bytes; a = (a | (kOsPageSize - 1)) + 1)
      *reinterpret_cast<volatile char*>(a) = 0;
  }
  // Objects allocated while marking are black (INV-MARK-2). No stop of the world can come
  // between this load and the publication below: a mark start that comes after marks the
  // rest of the run itself (blacken_runs).
  if (__atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) != 0) {
    s->mark_range(first, n);
    t->black_bytes += bytes;
    t->cache.black_lo = p;  // the barrier's filter (WbBuf::needs, gc.h)
    t->cache.black_hi = p + bytes;
  }
  // Release: the cleared slots (and their heap bits, uniform or written before each slot
  // is handed out) are visible before a marker may treat them as allocated (INV-SPAN-3);
  // this also orders the clearing before the caller publishes a pointer on weakly ordered
  // CPUs.
  s->freeindex_for_scan.store(s->freeindex, std::memory_order_release);
  t->cache.run[sc] = mcache::Run{p, p + bytes, span_class_noscan(sc) ? nullptr : kNoRunType, s->elemsize};
  t->cache.run_end[sc] = p + bytes;
  // The sample is the object this allocation returns (the first of the new span).
  if (refilled && t->cache.sample_bytes >= int64_t(kSampleBytes))
    sample_allocation(t, s, p, type || span_class_noscan(sc) ? type : conservative_type(), size);
  return true;
}

// The fast path could not hand out an object of class sc: its run (or the chunk of it the
// fast path sees) is used up, or the object needs its pointer bits recorded (a scan object
// of another type than the run's). Takes a new run if needed, hands out its next slot and
// records the slot's type.
//
// A program whose types alternate in one class (an interpreter's pairs and frames) brings
// most of its objects here, so the common case, a span whose bits are kept one by one
// (mixed), is a word or two of bitmap written and nothing else. The run keeps its type (the
// slots after this one still have that type's bits written ahead): of two alternating
// types, one takes the fast path. Go writes every small scan object's bits this way
// (heapSetType).
[[gnu::noinline]] void* alloc_small_slow(ThreadState* t, size_t size, const gc_type* type,
                                         bool noscan) {
  SpanClass sc = make_span_class(size_to_class(size), noscan);
  mcache& c = t->cache;
  mcache::Run& r = c.run[sc];
  bool chunk_done = false;  // the slots after this one have no type's bits written ahead
  if (r.next >= r.end) {
    chunk_done = true;
    if (r.next < c.run_end[sc])
      r.end = c.run_end[sc];  // the chunk is used up, not the run
    else if (!take_run(t, sc, type, size))
      return out_of_memory(size);
  }
  uintptr_t p = r.next;
  r.next = p + r.size;
  if (noscan) return reinterpret_cast<void*>(p);
  const gc_type* ty = type ? type : conservative_type();
  mspan* s = c.alloc[sc];
  // The previous object of the class came this way too, of this type, in the slot just
  // before: the type's bits are worth writing ahead (a chunk of the run), so that its next
  // objects take the fast path. An object of another type between them (by the fast path)
  // makes it a mix, whose objects write their own bits.
  bool again = c.slow_type[sc] == type && c.slow_next[sc] == p;
  c.slow_type[sc] = type;
  c.slow_next[sc] = r.next;
  if (s->heap_bits) {
    uint64_t bits = ty->tile64 & s->obj_word_mask;
    uint64_t u = s->uniform_bits.load(std::memory_order_relaxed);  // only the owner writes it
    if (u != kHeapBitsMixed) {
      s->set_heap_bits(s->object_index(p), ty->tile64);
      // While the span's bits stay uniform and this type's, its next objects need no write.
      // (A 64-word pattern may equal a state's value, kHeapBitsMixed: INV-SPAN-4.)
      u = s->uniform_bits.load(std::memory_order_relaxed);
      if (u < kHeapBitsUnset) {
        r.type = u == bits ? type : kNoRunType;
        return reinterpret_cast<void*>(p);
      }
      // It went mixed: the bitmap holds the old uniform bits, of a type not known here.
      chunk_done = true;
    } else {
      s->write_heap_bits_at(p, bits);
    }
    // Bits written ahead: all of a short run (objects of 512 B, whose slots cost their
    // clearing anyway); a chunk of a long one for the second object of a type in a row, or
    // when the run's slots have no type's bits ahead (a new run, a chunk used up).
    if (!again && !chunk_done && r.type != kNoRunType && s->elemsize < kMaxHeapBitsElem)
      return reinterpret_cast<void*>(p);
    // (A division: only here.)
    uint32_t left = uint32_t((c.run_end[sc] - r.next) / r.size);
    uint32_t ahead = left <= kPrimeSlots && s->elemsize >= kMaxHeapBitsElem ? left : std::min(left, kChunkSlots);
    if (ahead == 0) return reinterpret_cast<void*>(p);
    s->write_heap_bits_run(s->object_index(r.next), ahead, bits);
    r.type = type;
    r.end = r.next + uintptr_t(ahead) * r.size;  // the rest of the run: c.run_end[sc]
  } else {
    // Relaxed: see mspan.h. The slot is already published, but zero-filled: a marker that
    // reads the type before this store scans zeros (or, while marking, never scans the
    // slot: it was marked black when its run was taken). Runs of these classes (over
    // 512 B) have at most kPrimeSlots slots.
    uint32_t idx = s->object_index(p);
    uint32_t n = uint32_t((r.end - r.next) / r.size);
    for (uint32_t i = 0; i <= n; i++) __atomic_store_n(&s->obj_types[idx + i], ty, __ATOMIC_RELAXED);
    r.type = type;
  }
  return reinterpret_cast<void*>(p);
}

// The slow path's common case, alone and without a frame: a scan object of another type
// than its run's, in a span whose pointer bits are kept one by one (objects under 512 B),
// with no reason to write its type's bits ahead (alloc_small_slow). Its own bits are
// written, a word or two of the bitmap, and the run keeps its type.
[[gnu::noinline]] void* alloc_retyped(ThreadState* t, SpanClass sc, size_t size, const gc_type* type) {
  mcache& c = t->cache;
  mcache::Run& r = c.run[sc];
  mspan* s = c.alloc[sc];
  uintptr_t p = r.next;
  if (__builtin_expect(p < r.end && r.type != kNoRunType && s->elemsize < kMaxHeapBitsElem &&
                           s->uniform_bits.load(std::memory_order_relaxed) == kHeapBitsMixed &&
                           !(c.slow_type[sc] == type && c.slow_next[sc] == p), 1)) {
    r.next = p + r.size;
    c.slow_type[sc] = type;
    c.slow_next[sc] = r.next;
    // A NULL type is the conservative one: every word a pointer.
    s->write_heap_bits_at(p, (type ? type->tile64 : ~uint64_t{0}) & s->obj_word_mask);
    return reinterpret_cast<void*>(p);
  }
  return alloc_small_slow(t, size, type, false);
}

// The fast path: hands out the next slot of the class's run (mcache::Run), which is
// already cleared, published and, during a mark, black. A scan object also needs the
// run's type (no pointer bits to write). Anything else goes to alloc_small_slow, which the
// fast path calls as its last act (a tail call: no stack frame).
// The bump itself: the next slot of the class's run if the run has one and its type is
// `key` (NULL for a noscan run or gc_alloc's conservative type), else nullptr.
// (tricolor_run_bump_, gc.h: the same bump as the inline fast paths.)
inline void* run_bump(ThreadState* t, size_t size, const gc_type* key, bool noscan) {
  return tricolor_run_bump_(&t->cache.run[make_span_class(size_to_class(size), noscan)], key);
}

inline void* alloc_tiny(ThreadState* t, size_t size);

inline void* alloc_small(ThreadState* t, size_t size, const gc_type* type, bool noscan) {
  // Noscan objects of 1 to 16 B, of a type or not, go to the tiny allocator (as Go's
  // mallocgc): the run of the 16 B noscan class is its byte cursor (gc.h).
  if (noscan && size - 1 < kTinySize) return alloc_tiny(t, size);
  if (void* p = run_bump(t, size, noscan ? nullptr : type, noscan)) return p;
  return alloc_small_slow(t, size, type, noscan);
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
  if (bytes <= kClearInPlaceBytes) {
    memset(reinterpret_cast<void*>(s->start), 0, bytes);
    return;
  }
  collector_wait_begin();
  memset(reinterpret_cast<void*>(s->start), 0, bytes);
  collector_wait_end();
}

[[gnu::noinline]] void* alloc_large(ThreadState* t, size_t size, const gc_type* type, bool noscan) {
  // More than the machine's memory and swap can never be backed. mimalloc maps such a
  // request without reserving it (MAP_NORESERVE), and the heap then spent seconds, with
  // its lock held, and gigabytes writing the page map of a span of 2^42 bytes. The kernel's
  // default overcommit heuristic refuses a mapping that large in the same way.
  if (__builtin_expect(size > os_backable_bytes(), 0)) {
    log_error("%s(%zu): more than the machine's memory and swap (%zu bytes)",
              alloc_name(noscan), size, os_backable_bytes());
    return out_of_memory(size);
  }
  if (!noscan && !type) type = conservative_type();
  size_t npages = (size + kPageSize - 1) / kPageSize;
  ThreadPin pin(t);  // t is used after the hook: the fiber must stay on this thread
  alloc_slow_hook(t, npages * kPageSize);
  SpanClass sc = make_span_class(0, noscan);
  bool needzero = false;
  mspan* s = heap().alloc_span(npages, sc, &needzero, &t->cache.pages);
  if (!s) {
    collect_for_oom();
    s = heap().alloc_span(npages, sc, &needzero, &t->cache.pages);
    if (!s) return out_of_memory(size);
  }
  if (needzero) zero_large(s, npages * kPageSize);
  s->large_type = noscan ? nullptr : type;
  s->freeindex = 1;
  s->alloc_count = 1;
  s->alloc_cache = 0;
  publish(s, 0);
  // Counted in the thread's pending counters, as a refill (mcache.h).
  t->cache.count_allocs(0, 1, npages * kPageSize);
  t->cache.charge(int64_t(npages * kPageSize));
  // Sampled before the span is filed: until then this thread owns it (mspan::nsampled).
  t->cache.sample_bytes += int64_t(npages * kPageSize);
  if (t->cache.sample_bytes >= int64_t(kSampleBytes)) sample_allocation(t, s, s->start, type, size);
  heap().central(sc).push_swept(s);  // the sweeper visits large spans on the full list
  return reinterpret_cast<void*>(s->start);
}

inline void* alloc_unpolled(ThreadState* t, size_t size, const gc_type* type, bool noscan) {
  if (size <= kMaxSmallSize) return alloc_small(t, size, type, noscan);
  if (size > kMaxAlloc) return absurd_size(size, noscan);
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
inline bool alloc_poll_pending() {
  return (__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) & kAllocPollMask) != 0;
}

// Whether the calling thread may allocate: attached, and not inside a blocking region of
// its own (tricolor_blocking_begin_saved clears the cache there). Stress builds keep no
// cache, and ask the thread's record.
inline bool may_allocate(ThreadState* t) {
#if TRICOLOR_STRESS
  return t != nullptr && !t->in_user_region();
#else
  (void)t;
  return tricolor_tls_cache != nullptr;
#endif
}

inline void* alloc_any(size_t size, const gc_type* type, bool noscan) {
  ThreadState* t = tls_thread;
  if (__builtin_expect(!may_allocate(t), 0)) return refused_alloc(size, noscan);
  if (__builtin_expect(alloc_poll_pending(), 0)) return alloc_polled(t, size, type, noscan);
  return alloc_unpolled(t, size, type, noscan);
}

// The tiny allocator's run (the 16 B noscan run, gc.h) has no room left: takes a new run,
// whose first block the tiny bump then uses. Out of line, so that the tiny fast path needs
// no stack frame.
[[gnu::noinline]] void* alloc_tiny_run(ThreadState* t, size_t size) {
  // The cursor leaves the run's last block for good, so that a stop of the world during the
  // refill below (a heap growth waits in a collector wait) finds the run used up, as every
  // other class's run is when it is replaced: release_all gives back only a run that ends
  // at its span's freeindex, and the span is no longer cached then.
  mcache::Run& r = t->cache.run[make_span_class(size_to_class(kTinySize), true)];
  r.next = r.end;
  if (!take_run(t, make_span_class(size_to_class(kTinySize), true), nullptr, kTinySize))
    return out_of_memory(size);
  return tricolor_tiny_bump_(&t->cache, size);
}

// The tiny allocator (tricolor_tiny_bump_ in gc.h, shared with the inline fast path).
inline void* alloc_tiny(ThreadState* t, size_t size) {
  if (void* p = tricolor_tiny_bump_(&t->cache, size)) return p;
  return alloc_tiny_run(t, size);
}

inline void* alloc_noscan_unpolled(ThreadState* t, size_t size) {
  if (size - 1 < kTinySize) return alloc_tiny(t, size);
  return alloc_unpolled(t, size, nullptr, true);
}

// gc_alloc_noscan when a safepoint has work: as alloc_polled.
[[gnu::noinline]] void* alloc_noscan_polled(ThreadState* t, size_t size) {
  safepoint_slow(t, /*may_yield=*/false);
  return alloc_noscan_unpolled(tls_thread, size);
}

}  // namespace
}  // namespace tricolor::internal

using namespace tricolor::internal;

// The two entry points start on a cache line: where the layout of the library put one
// mid-line, the same instructions took up to 10-15% longer per object (alloc-hot).
extern "C" [[gnu::aligned(64)]] void*(gc_alloc)(size_t size, const gc_type* type) {
#if TRICOLOR_STRESS
  if (tls_thread && !tls_thread->in_user_region()) stress_alloc();
#else
  // The fast path of a scan object: the run of the size's scan class hands out its next
  // slot if the run's type is this one (NULL: the conservative type). The type's noscan
  // flag is not read: a noscan type is never a scan run's type (alloc_small_slow), so it
  // misses here and takes the general path below, which files it in a noscan class.
  ThreadState* t = tls_thread;
  if (__builtin_expect(may_allocate(t) && size <= kMaxSmallSize && !alloc_poll_pending(), 1)) {
    SpanClass sc = make_span_class(size_to_class(size), false);
    if (void* p = tricolor_run_bump_(&t->cache.run[sc], type)) return p;
    // An object of another type than the run's, or a run used up: straight to the slow
    // path (a tail call), the class's run not looked up a second time.
    if (type == nullptr || !type->noscan) return alloc_retyped(t, sc, size, type);
  }
#endif
  // A NULL type (the conservative one) is resolved off the fast path.
  return alloc_any(size, type, type != nullptr && type->noscan);
}

extern "C" [[gnu::aligned(64)]] void*(gc_alloc_noscan)(size_t size) {
  ThreadState* t = tls_thread;
  if (__builtin_expect(!may_allocate(t), 0)) return refused_alloc(size, true);
#if TRICOLOR_STRESS
  stress_alloc();
  t = tls_thread;  // a fiber may resume on another thread after the collection
#endif
  if (__builtin_expect(alloc_poll_pending(), 0))
    return alloc_noscan_polled(t, size);  // a tail call: the fast paths need no frame
  return alloc_noscan_unpolled(t, size);
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
