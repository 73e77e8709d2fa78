/* tricolor: a concurrent, tri-color, mark-sweep garbage-collected heap.
 *
 * The C API. Compiles as C11 and as C++. See README.md for the guide and the
 * misuse table; the design is described in lib/gc/README.md.
 *
 *   gc_init(NULL);                                  // attaches the calling thread
 *   size_t offs[] = { offsetof(Node, left), offsetof(Node, right) };
 *   const gc_type* node_t = gc_type_new("Node", sizeof(Node), offs, 2);
 *   Node* n = gc_alloc(sizeof(Node), node_t);       // zeroed
 *   gc_write_ptr(&n->left, gc_alloc(sizeof(Node), node_t));
 */
#ifndef TRICOLOR_GC_H_
#define TRICOLOR_GC_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TRICOLOR_API __attribute__((visibility("default")))
#else
#define TRICOLOR_API
#endif

/* ---- Initialisation ---------------------------------------------------- */

typedef struct gc_options {
  int gc_percent;              /* GOGC: next goal = live * (1 + gc_percent/100); default 100;
                                  negative: no automatic collection */
  size_t memory_limit;         /* soft limit in bytes (like GOMEMLIMIT); 0: none */
  int procs;                   /* number of P's for the scheduler; 0: hardware threads */
  int gctrace;                 /* 1: one summary line per cycle on stderr */
  const char* heap_trace;      /* path of a heap-trace dump; NULL: none */
  uint64_t force_gc_period_ns; /* default 2 minutes; 0: default */
  uint64_t scavenge_delay_ns;  /* free pages unused this long go back to the OS;
                                  default 5 minutes; 0: default */
  size_t fiber_stack_size;     /* address space of one fiber stack; 0: 256 KiB */
} gc_options;

/* Defaults, then the TRICOLOR_* environment overrides. */
TRICOLOR_API void gc_options_default(gc_options* o);
/* NULL: defaults + environment. The calling thread is attached. 0 on success,
 * -1 on failure, with a message: a second gc_init without gc_shutdown, or options out of
 * range (procs outside 0..1024, fiber_stack_size above 1 GiB). */
TRICOLOR_API int gc_init(const gc_options* o);
/* Stops the collector's threads and releases the heap. Every object is gone. */
TRICOLOR_API void gc_shutdown(void);

/* ---- Allocation -------------------------------------------------------- */

typedef struct gc_type gc_type; /* a precise pointer map */

/* `size` bytes whose pointer words sit at `pointer_offsets` (multiples of 8, each < size).
 * Types live as long as the heap. NULL with a message on bad input. */
TRICOLOR_API const gc_type* gc_type_new(const char* name, size_t size,
                                        const size_t* pointer_offsets, size_t count);
TRICOLOR_API const char* gc_type_name(const gc_type* type);

/* Zeroed memory. type NULL: every aligned word is scanned conservatively. With a type,
 * an object of size >= the type's size is scanned as repeated elements of the type.
 * Size 0 returns a unique minimum-size object. NULL, with a message, on failure. */
TRICOLOR_API void* gc_alloc(size_t size, const gc_type* type);
/* Pointer-free object ("atomic"); objects of up to 16 bytes go to the tiny allocator.
 * Alignment: an object of 1 to 15 bytes is aligned to its size's lowest set bit, at most 8
 * (as in Go: 12 B get 4, 11 B get 1), since the tiny allocator packs them; 16 B and more are
 * 16-aligned (objects over 32 KiB start a page); size 0 is 8-aligned. A struct's size is a
 * multiple of its alignment, so it gets what it needs; a struct with a variable-length tail
 * must round its total size up to a multiple of its alignment. */
TRICOLOR_API void* gc_alloc_noscan(size_t size);

/* The start of the object holding p, or NULL; its usable size, or 0. Objects the tiny
 * allocator packed (noscan, under 16 B) share a 16-byte block, which is what the collector
 * knows of them (as in Go): for them these answer the block, and gc_size is the block's
 * 16 bytes, not the size asked for. */
TRICOLOR_API void* gc_base(const void* p);
TRICOLOR_API size_t gc_size(const void* p);

/* ---- The write barrier --------------------------------------------------- */

/* Internal state read by the inline fast paths below. Not part of the API. */
extern TRICOLOR_API uint32_t tricolor_barrier_on;   /* 1 while marking */
extern TRICOLOR_API uint32_t tricolor_poll_request; /* nonzero: a safepoint has work */
TRICOLOR_API void tricolor_write_ptr_slow(void* slot, void* value);
TRICOLOR_API void tricolor_safepoint_slow(void);

/* The one barriered store of a heap pointer into a heap object: *(void**)slot = value.
 * Cost with the barrier off: one relaxed load, one predicted branch, one store. A NULL slot
 * joins the barrier's branch (a test and an or, no second branch) and the slow path reports
 * it instead of faulting; where the compiler knows the slot is not NULL, the test folds
 * away. */
static inline void tricolor_write_ptr_marking_(void* slot, void* value);
static inline void gc_write_ptr(void* slot, void* value) {
  if (__builtin_expect((__atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) |
                        (uint32_t)(slot == NULL)) != 0, 0)) {
    tricolor_write_ptr_marking_(slot, value);
    return;
  }
  /* Relaxed atomic store: a plain mov, and concurrent markers read it race-free. */
  __atomic_store_n((void**)slot, value, __ATOMIC_RELAXED);
}

/* ---- The allocation fast paths, inline ------------------------------------ */

/* gc_alloc and gc_alloc_noscan are also function-like macros that bump the calling thread's
 * allocation run in the caller's own code (no call, no PLT jump; bdwgc's gc_inline.h and
 * cppgc's inline allocation do the same) and call the library for everything else: a used-up
 * run, a safepoint with work, an unattached thread, a large or an absurd size. The objects,
 * their zeroing and their errors are those of the functions; `(gc_alloc)(...)` and
 * `&gc_alloc` name the functions themselves. Define TRICOLOR_NO_INLINE_ALLOC before
 * including this header to call the functions always.
 *
 * x86-64 only: a fiber that allocates, yields and resumes on another thread must read that
 * thread's cache. x86-64 compilers read initial-exec TLS through %fs at every access; on other
 * targets a compiler may keep the thread pointer in a register across the fiber switch.
 * Not in code built with ThreadSanitizer either: its instrumentation of a TLS read takes the
 * variable's address once per function (GCC at -O2), and after a fiber switch it reported the
 * old thread's slot as raced on, though the read itself went through %fs. */
#if defined(__SANITIZE_THREAD__)
#define TRICOLOR_TSAN_CALLER_ 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TRICOLOR_TSAN_CALLER_ 1
#endif
#endif
#if defined(__GNUC__) || defined(__clang__)
/* Internal state of the fast paths below (lib/alloc/mcache.h). Not part of the API. */
struct tricolor_run { /* slots [next, end) of a span, cleared and ready */
  uintptr_t next;
  uintptr_t end;
  const gc_type* type; /* a scan run: the one type whose objects it hands out here */
  uintptr_t size;      /* the slot size */
};
enum { tricolor_num_span_classes_ = 134, /* 67 size classes, scan and noscan */
       tricolor_tiny_span_class_ = 5,    /* 16 B noscan: the tiny allocator's run */
       tricolor_poll_alloc_mask_ = ~8 }; /* the poll requests an allocation takes */
struct tricolor_cache {
  uint64_t tiny_allocs; /* objects under 16 B handed out (flushed to the statistics) */
  /* The slots of the last allocation run taken while marking: all black, so a barrier
   * whose old and new values are NULL or in them queues nothing (lib/gc/barrier.cc). */
  uintptr_t black_lo;
  uintptr_t black_hi;
  uint64_t reserved_[1];
  struct tricolor_run run[tricolor_num_span_classes_];
};
/* The calling thread's cache: NULL when it is not attached (and in stress builds). */
extern TRICOLOR_API __thread struct tricolor_cache* tricolor_tls_cache
    __attribute__((tls_model("initial-exec")));
extern TRICOLOR_API const uint8_t tricolor_size_to_class8[129];   /* (size + 7) / 8 */
extern TRICOLOR_API const uint8_t tricolor_size_to_class128[249]; /* (size - 897) / 128 */

/* The bump of a run, shared by these fast paths and the library's: its next slot if it has
 * one and its type is `type` (NULL for a noscan run), else NULL. */
static inline __attribute__((always_inline)) void* tricolor_run_bump_(struct tricolor_run* r,
                                                                      const gc_type* type) {
  uintptr_t p = r->next;
  if (__builtin_expect(p < r->end && r->type == type, 1)) {
    r->next = p + r->size;
    if (p == 0) __builtin_unreachable(); /* a run is never at 0: callers test no result */
    return (void*)p;
  }
  return NULL;
}

/* The tiny allocator (Go's, with its 16 B blocks laid end to end), shared likewise:
 * noscan objects of 1 to 16 B. The run of the 16 B noscan class is its cursor: `next` is a
 * byte address, and an object takes the next bytes aligned to its size's lowest set bit (at
 * most 8) that do not cross a 16 B block, each block being one heap object (16 B objects
 * take a block each). Bytes a block has left when the next object does not fit are lost, as
 * in Go. NULL when the run has no room. (The bump's one dependency from an allocation to the
 * next is the cursor's load and store: Go's block and offset, one block per run slot, cost
 * a second one every few objects.) */
static inline __attribute__((always_inline)) void* tricolor_tiny_bump_(struct tricolor_cache* c,
                                                                       size_t size) {
  struct tricolor_run* r = &c->run[tricolor_tiny_span_class_];
  uintptr_t align = size & (~size + 1);
  align = align > 8 ? 8 : align;
  uintptr_t p = r->next;
  /* The common case, the cursor aligned and the object within its block and the run, is
   * tested as a whole: the tests feed one predicted branch, and the cursor's next value is
   * its load plus the size (no select on the path from one allocation to the next). */
  if (__builtin_expect((p & (align - 1)) == 0 && (p & 15) + size <= 16 && p + size <= r->end, 1)) {
    r->next = p + size;
  } else {
    /* Aligned in this block, or else at the start of the next: a branch each, so that
     * the cursor's next value does not wait for the test (objects of 9 to 15 B take the
     * second one every time). */
    uintptr_t a = (p + align - 1) & ~(align - 1);
    if ((a & 15) + size <= 16) {
      p = a;
      if (p + size > r->end) return NULL;
      r->next = p + size;
    } else {
      p = (p + 15) & ~(uintptr_t)15;
      if (p + size > r->end) return NULL;
      r->next = p + size;
    }
  }
  c->tiny_allocs += size < 16;
  if (p == 0) __builtin_unreachable(); /* a run is never at 0 */
  return (void*)p;
}
#endif

#if !defined(TRICOLOR_NO_INLINE_ALLOC) && !defined(TRICOLOR_TSAN_CALLER_) && \
    defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRICOLOR_INLINE_ALLOC 1

static inline __attribute__((always_inline)) struct tricolor_run* tricolor_run_of_(
    struct tricolor_cache* c, size_t size, unsigned noscan) {
  unsigned cls = size <= 1016 ? tricolor_size_to_class8[(size + 7) >> 3]
                              : tricolor_size_to_class128[(size - 897) >> 7];
  return &c->run[cls << 1 | noscan];
}

static inline __attribute__((always_inline)) struct tricolor_cache* tricolor_cache_ready_(void) {
  struct tricolor_cache* c = tricolor_tls_cache;
  if (__builtin_expect(c != NULL && (__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) &
                                     (uint32_t)tricolor_poll_alloc_mask_) == 0, 1))
    return c;
  return NULL;
}

static inline __attribute__((always_inline)) void* tricolor_alloc_inline_(size_t size,
                                                                          const gc_type* type) {
  struct tricolor_cache* c = tricolor_cache_ready_();
  if (__builtin_expect(c != NULL && size <= 32768, 1)) {
    void* p = tricolor_run_bump_(tricolor_run_of_(c, size, 0), type);
    if (__builtin_expect(p != NULL, 1)) return p;
  }
  return (gc_alloc)(size, type);
}

static inline __attribute__((always_inline)) void* tricolor_alloc_noscan_inline_(size_t size) {
  struct tricolor_cache* c = tricolor_cache_ready_();
  if (__builtin_expect(c != NULL && size <= 32768, 1)) {
    void* p = size - 1 < 16 ? tricolor_tiny_bump_(c, size)
                            : tricolor_run_bump_(tricolor_run_of_(c, size, 1), NULL);
    if (__builtin_expect(p != NULL, 1)) return p;
  }
  return (gc_alloc_noscan)(size);
}

/* Variadic: a template argument list with a comma in an argument stays whole. */
#define gc_alloc(...) tricolor_alloc_inline_(__VA_ARGS__)
#define gc_alloc_noscan(...) tricolor_alloc_noscan_inline_(__VA_ARGS__)

/* gc_write_ptr while marking: a store whose old and new values are both NULL or in the
 * thread's black run (the common case: a new object stored into the new object that holds
 * it) has nothing to shade and is done here; the others go to the library. */
static inline __attribute__((always_inline)) void tricolor_write_ptr_marking_(void* slot,
                                                                               void* value) {
  struct tricolor_cache* c = tricolor_tls_cache;
  if (__builtin_expect(c != NULL && slot != NULL, 1)) {
    uintptr_t lo = c->black_lo, span = c->black_hi - lo;
    uintptr_t old = __atomic_load_n((uintptr_t*)slot, __ATOMIC_RELAXED);
    uintptr_t v = (uintptr_t)value;
    if ((old == 0 || old - lo < span) && (v == 0 || v - lo < span)) {
      __atomic_store_n((void**)slot, value, __ATOMIC_RELAXED);
      return;
    }
  }
  tricolor_write_ptr_slow(slot, value);
}
#else
static inline void tricolor_write_ptr_marking_(void* slot, void* value) {
  tricolor_write_ptr_slow(slot, value);
}
#endif /* inline allocation */

/* ---- Roots, threads, safepoints ----------------------------------------- */

/* A range of words outside the heap (e.g. globals) scanned conservatively as a root.
 * Plain stores into it are allowed: the roots are scanned at mark start, whenever a running
 * thread scans its own stack, and at mark termination. One case needs gc_write_ptr (which
 * accepts a root slot): a root slot through which one thread or fiber hands a pointer to
 * another while both run, if the giver drops its own copy at once. Removing a root while
 * the collector marks shades what it held. The scan at mark termination runs with the world
 * stopped, so that pause grows with the roots' total size: about 0.25 ms per MiB of roots
 * (64 MiB of roots made 14-19 ms pauses). Keep large tables in the heap (gc_alloc'd arrays
 * written with gc_write_ptr), reached from a small root. */
TRICOLOR_API void gc_add_root(void* start, size_t bytes);
TRICOLOR_API void gc_remove_root(void* start);

TRICOLOR_API int gc_thread_attach(void); /* 0 on success (also when already attached) */
TRICOLOR_API void gc_thread_detach(void);
/* 1 if the calling thread is attached (a fiber's thread is), else 0. Attachment does not
 * nest: a guard that attaches only if this is 0 detaches only what it attached. */
TRICOLOR_API int gc_thread_is_attached(void);

/* Poll: long loops that do not allocate call this. Cost: one relaxed load and a branch. */
static inline void gc_safepoint(void) {
  if (__builtin_expect(__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) != 0, 0))
    tricolor_safepoint_slow();
}

/* A region that touches no heap pointer (a system call, a lock wait): the collector never
 * waits for it. A thread that may wait for a lock held by another mutator must wait inside
 * such a region, or stopping the world could wait for it forever. Regions nest. Inside
 * one, gc_alloc and gc_alloc_noscan return NULL with a message (the collector counts the
 * thread as stopped); gc_write_ptr there is not safe (docs/misuse.md). */
TRICOLOR_API void gc_blocking_begin(void);
TRICOLOR_API void gc_blocking_end(void);

/* ---- Control ----------------------------------------------------------- */

/* A full cycle; returns when sweeping is done. It first clears 4 KiB of the stack below its
 * caller (bdwgc's GC_clear_stack), so that an address left there by a call that returned
 * does not keep its object through this cycle; the caller's own frames are scanned as
 * they are. */
TRICOLOR_API void gc_collect(void);
TRICOLOR_API void gc_free_os_memory(void); /* gc_collect, then return every free page */
TRICOLOR_API int gc_set_percent(int pct);  /* returns the previous value */
TRICOLOR_API size_t gc_set_memory_limit(size_t bytes); /* returns the previous value */

typedef void (*gc_oom_fn)(size_t request);
/* Called when an allocation cannot be met after a full collection; if it returns, the
 * allocation returns NULL. Default (NULL): a message and abort(). Returns the old one. */
TRICOLOR_API gc_oom_fn gc_set_oom_handler(gc_oom_fn fn);

/* ---- Statistics -------------------------------------------------------- */

#define GC_PAUSE_RING 256

typedef struct gc_stats {
  uint64_t heap_alloc;     /* bytes in allocated objects (live + not yet swept) */
  uint64_t heap_sys;       /* bytes of arenas obtained from the OS page source, less the
                              first page of each chunk (it holds no object) */
  uint64_t heap_inuse;     /* bytes in spans with at least one object */
  uint64_t heap_idle;      /* heap_sys - heap_inuse */
  uint64_t heap_released;  /* idle bytes returned to the OS, or never used since the OS gave
                              them (as Go counts HeapReleased): not resident */
  uint64_t heap_objects;   /* allocated objects */
  uint64_t total_alloc;    /* cumulative bytes allocated */
  uint64_t mallocs;        /* cumulative objects allocated (as Go counts them: a tiny
                              allocator's object and each 16 B block it takes) */
  uint64_t frees;          /* cumulative objects freed */
  uint64_t next_gc;        /* heap goal of the next cycle */
  uint64_t trigger;        /* heap size at which the next cycle starts */
  uint64_t heap_live;      /* the pacer's view of the heap (span granular) */
  uint64_t heap_marked;    /* bytes marked by the last cycle (with those allocated during it) */
  uint64_t last_gc_ns;     /* end of the last cycle, ns since the Unix epoch */
  uint32_t num_gc;         /* completed cycles */
  uint32_t num_forced_gc;  /* cycles started by gc_collect or the periodic timer */
  uint64_t pause_total_ns; /* every stop-the-world pause, summed */
  uint64_t pause_max_ns;   /* the longest single stop of the world */
  uint64_t pause_ns[GC_PAUSE_RING];     /* per cycle, the sum of its two stops of the world
                                           (as Go's PauseNs), most recent at
                                           [(num_gc+255)%256] */
  uint64_t pause_end_ns[GC_PAUSE_RING]; /* end of that cycle's last pause, Unix ns */
  double gc_cpu_fraction;  /* share of the available CPU used by the collector (idle marking
                              left out: idle_mark_ns) */
  uint64_t gc_cpu_ns;      /* CPU time of the collector, assists included */
  uint64_t assist_ns;      /* CPU time of mark assists */
  uint64_t stacks;         /* registered stacks (threads and fibers) */
  int32_t gc_percent;
  uint64_t memory_limit;
  uint64_t idle_mark_ns;   /* of gc_cpu_ns: marking on procs no mutator ran on (Go's idle
                              mark workers); left out of gc_cpu_fraction, as Go does */
  uint64_t mark_ns;        /* elapsed time of the concurrent mark phases, summed */
  uint64_t mark_worker_ns; /* of gc_cpu_ns: CPU time of the mark workers (dedicated and
                              fractional), idle marking not included. The collector's share
                              of the CPU while marking, Go's utilization, is
                              (mark_worker_ns + assist_ns) / (mark_ns * procs) */
  int32_t procs;           /* procs the collector paces for (gc_options.procs) */
} gc_stats;

/* Cheap: reads counters, never stops the world. Each thread adds what it allocates to the
 * shared counters in steps of about 64 KiB, and all of it at every collection's end and when
 * it detaches: right after gc_collect the allocation figures are exact. */
TRICOLOR_API void gc_read_stats(gc_stats* s);

typedef struct gc_class_stats {
  uint32_t size_class;  /* 0: large objects */
  uint32_t object_size; /* bytes per object (0 for large) */
  uint64_t spans;       /* spans of this class in use (scan + noscan) */
  uint64_t objects;     /* objects allocated in them */
  uint64_t bytes_free;  /* free slot bytes in them */
  uint64_t mallocs;     /* cumulative allocations of this class */
  uint64_t frees;       /* cumulative frees of this class */
} gc_class_stats;

/* Fills up to `max` entries, one per size class (0 = large); returns how many exist.
 * Walks the span table under the heap lock: meant for tools, not hot loops. */
TRICOLOR_API int gc_read_class_stats(gc_class_stats* out, int max);

#ifdef __cplusplus
}
#endif

#endif /* TRICOLOR_GC_H_ */
