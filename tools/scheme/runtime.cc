// The parts of the interpreter that depend on the memory manager: heap set-up and its limit,
// the out-of-memory handler, the scheduler, and the builtins spawn, join, yield,
// collect-garbage and heap-stats.
//
// tricolor build: the program runs as the first fiber of tricolor's scheduler; (spawn thunk)
// starts a fiber with tricolor::go, (join f) parks until it returns and yields its value.
// Fibers run in parallel on the scheduler's threads and share the heap.
//
// bdwgc build (SCHEME_BDWGC): no scheduler; (spawn thunk) runs the thunk at once and (join f)
// returns its value, so programs give the same output, without the parallelism.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "interp.h"

#if !SCHEME_BDWGC
#include "tricolor/fiber.h"
#include "tricolor/gc.hpp"
#endif

namespace scheme {
namespace {

constexpr size_t kStackBytes = size_t{8} << 20;   // each fiber's (and the main thread's) stack
constexpr size_t kStackMargin = size_t{256} << 10;  // left for primitives and the runtime

Value spawn_common(const Args& a) {
  if (!has_tag(a[0], Tag::kClosure) && !has_tag(a[0], Tag::kPrimitive))
    type_error(a, 0, "a procedure of no arguments");
  Fiber* f = heap::make<Fiber>();
  f->tag = Tag::kFiber;
  f->thunk = a[0];
  f->result = &kUnspecified;
  return f;
}

Fiber* fiber_arg(const Args& a) {
  if (!has_tag(a[0], Tag::kFiber)) type_error(a, 0, "a fiber");
  return static_cast<Fiber*>(a[0]);
}

[[noreturn]] void out_of_memory(size_t request, size_t limit) {
  std::fflush(stdout);
  if (limit)
    std::fprintf(stderr,
                 "scheme: out of memory: cannot allocate %zu bytes: the heap limit of %zu bytes "
                 "is exhausted (TRICOLOR_MEMLIMIT)\n",
                 request, limit);
  else
    std::fprintf(stderr, "scheme: out of memory: cannot allocate %zu bytes\n", request);
  std::_Exit(1);
}

#if SCHEME_BDWGC

size_t g_limit = 0;

size_t parse_limit(const char* s) {  // bytes, with KiB/MiB/GiB suffixes (as tricolor reads it)
  char* end = nullptr;
  double v = std::strtod(s, &end);
  std::string unit(end);
  size_t mult = unit == "KiB" ? 1024 : unit == "MiB" ? 1 << 20 : unit == "GiB" ? 1 << 30 : 1;
  return size_t(v * double(mult));
}

void* on_bdwgc_oom(size_t request) { out_of_memory(request, g_limit); }

#else

void on_tricolor_oom(size_t request) {
  gc_stats s;
  gc_read_stats(&s);
  out_of_memory(request, s.memory_limit);
}

#endif

}  // namespace

#if SCHEME_BDWGC

void heap::out_of_memory_bdwgc(size_t request) { out_of_memory(request, g_limit); }

void init_heap() {
  GC_INIT();
  if (const char* m = std::getenv("TRICOLOR_MEMLIMIT")) {
    g_limit = parse_limit(m);
    if (g_limit) GC_set_max_heap_size(g_limit);
  }
  GC_set_oom_fn(on_bdwgc_oom);
}

int run_main(int (*f)(Ctx*, void*), void* arg) {
  Ctx cx = make_ctx(kStackBytes - kStackMargin);  // the main thread's 8 MiB
  return f(&cx, arg);
}

void init_runtime_builtins() {
  define_primitive("spawn", [](const Args& a) -> Value {
    Fiber* f = static_cast<Fiber*>(spawn_common(a));
    f->result = apply(f->thunk, nil(), a.cx);
    return f;
  }, 1, 1);
  define_primitive("join", [](const Args& a) -> Value { return fiber_arg(a)->result; }, 1, 1);
  define_primitive("yield", [](const Args&) -> Value { return &kUnspecified; }, 0, 0);
  define_primitive("collect-garbage", [](const Args&) -> Value {
    GC_gcollect();
    return &kUnspecified;
  }, 0, 0);
  define_primitive("heap-stats", [](const Args&) -> Value {
    return cons(fixnum(int64_t(GC_get_heap_size())), cons(fixnum(int64_t(GC_get_gc_no())), nil()));
  }, 0, 0);
}

#else

void init_heap() {
  gc_options o;
  gc_options_default(&o);  // TRICOLOR_MEMLIMIT, TRICOLOR_GCTRACE, ... apply
  o.fiber_stack_size = kStackBytes;
  if (gc_init(&o) != 0) {
    std::fprintf(stderr, "scheme: cannot initialise the heap\n");
    std::exit(1);
  }
  gc_set_oom_handler(on_tricolor_oom);
}

int run_main(int (*f)(Ctx*, void*), void* arg) {
  int status = 0;
  int rc = tricolor::run([&] {
    Ctx cx = make_ctx(kStackBytes - kStackMargin);
    status = f(&cx, arg);
  });
  if (rc != 0) {
    std::fprintf(stderr, "scheme: the scheduler failed to start\n");
    return 1;
  }
  return status;
}

void init_runtime_builtins() {
  define_primitive("spawn", [](const Args& a) -> Value {
    Fiber* f = static_cast<Fiber*>(spawn_common(a));
    // The lambda's copy of f is kept alive by tricolor::go until the fiber runs, then by the
    // fiber's stack.
    tricolor::fiber h = tricolor::go([f] {
      Ctx cx = make_ctx(kStackBytes - kStackMargin);
      try {
        f->result = apply(f->thunk, nil(), &cx);
      } catch (const SchemeError& e) {
        die(e);
      }
    });
    f->handle = h.native_handle();  // joined by (join f); never joined: released at exit
    return f;
  }, 1, 1);
  define_primitive("join", [](const Args& a) -> Value {
    Fiber* f = fiber_arg(a);
    // aux: 0 not joined, 1 being joined, 2 joined. The first joiner waits in gc_join; any
    // other waits for it by yielding (gc_join admits one waiter per fiber).
    uint32_t expected = 0;
    if (__atomic_compare_exchange_n(&f->aux, &expected, 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
      tricolor::fiber(static_cast<gc_fiber*>(f->handle)).join();
      __atomic_store_n(&f->aux, 2, __ATOMIC_RELEASE);
    } else {
      while (__atomic_load_n(&f->aux, __ATOMIC_ACQUIRE) != 2) tricolor::yield();
    }
    return f->result;
  }, 1, 1);
  define_primitive("yield", [](const Args&) -> Value {
    tricolor::yield();
    return &kUnspecified;
  }, 0, 0);
  define_primitive("collect-garbage", [](const Args&) -> Value {
    gc_collect();
    return &kUnspecified;
  }, 0, 0);
  define_primitive("heap-stats", [](const Args&) -> Value {
    gc_stats s;
    gc_read_stats(&s);
    return cons(fixnum(int64_t(s.heap_alloc)), cons(fixnum(int64_t(s.num_gc)), nil()));
  }, 0, 0);
}

#endif

}  // namespace scheme
