/* Misuse of the public API around the heap's lifetime, in C (gc.h compiles as C11): every
 * entry point called before gc_init, a second gc_init, gc_init with options out of range,
 * every entry point after gc_shutdown, a second gc_shutdown, and a heap started again
 * afterwards. Each call must return its documented error value (docs/misuse.md), say so on
 * stderr where the table gives a message (the message is captured and must name the entry
 * point), and the process must not crash. Malformed TRICOLOR_CHECKMARK (and, in the stress
 * build, TRICOLOR_STRESS_N) are read once per process, so they are checked here too.
 * This is its own process: "before gc_init" needs a process where gc_init never ran. */
#define _POSIX_C_SOURCE 200809L /* setenv, dup2, fileno */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "tricolor/fiber.h"
#include "tricolor/gc.h"

static int failures = 0;
#define EXPECT(cond)                                                          \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "lifecycle.c:%d: FAILED: %s\n", __LINE__, #cond);      \
      failures++;                                                             \
    }                                                                         \
  } while (0)

/* Runs the statement with stderr captured; what it wrote must contain `text`, and it must
 * say nothing when `text` is NULL. */
static char captured[16384];
#define EXPECT_MESSAGE(stmt, text)                                                     \
  do {                                                                                 \
    capture cap_;                                                                      \
    EXPECT(capture_begin(&cap_) == 0);                                                 \
    stmt;                                                                              \
    capture_end(&cap_, captured, sizeof captured);                                     \
    const char* want_ = (text);                                                        \
    if (want_ ? !strstr(captured, want_) : captured[0] != '\0') {                      \
      fprintf(stderr, "lifecycle.c:%d: FAILED: %s: expected %s%s%s on stderr, got \"%s\"\n", \
              __LINE__, #stmt, want_ ? "\"" : "", want_ ? want_ : "nothing",           \
              want_ ? "\"" : "", captured);                                            \
      failures++;                                                                      \
    }                                                                                  \
  } while (0)

static void oom(size_t n) { (void)n; }
static void fiber_main(void* arg) { (void)arg; }
/* Runs on a minimum-size stack: allocates, yields, and checks its object. */
static void fiber_allocates(void* arg) {
  (void)arg;
  long* p = (long*)gc_alloc_noscan(64);
  EXPECT(p != NULL);
  if (!p) return;
  p[0] = 42;
  gc_yield();
  gc_sleep(0);
  EXPECT(p[0] == 42 && gc_base(p) == p);
}

/* Every entry point with a heap that is not running (phase: "before" or "after"). */
static void without_heap(const char* phase) {
  fprintf(stderr, "---- calls %s the heap's lifetime (each logs a message) ----\n", phase);
  void* slot = NULL;
  static long local_root[4];
  gc_stats s;
  size_t offs[1] = {0};

  EXPECT_MESSAGE(EXPECT(gc_alloc(16, NULL) == NULL), "gc_alloc(16)");
  EXPECT_MESSAGE(EXPECT(gc_alloc_noscan(16) == NULL), "gc_alloc_noscan(16)");
  EXPECT_MESSAGE(EXPECT((gc_alloc_noscan)(16) == NULL), "gc_alloc_noscan(16)"); /* not inline */
  EXPECT(gc_alloc_noscan(3) == NULL);
  EXPECT_MESSAGE(EXPECT(gc_base(&slot) == NULL), NULL);
  EXPECT_MESSAGE(EXPECT(gc_size(&slot) == 0), NULL);
  EXPECT_MESSAGE(EXPECT(gc_thread_attach() == -1),
                 !strcmp(phase, "before") ? "gc_thread_attach called before gc_init"
                                          : "gc_thread_attach called after gc_shutdown");
  EXPECT(gc_thread_is_attached() == 0);
  EXPECT_MESSAGE(gc_thread_detach(), "gc_thread_detach");  /* not attached */
  EXPECT_MESSAGE(gc_safepoint(), NULL);                     /* nothing to do */
  EXPECT_MESSAGE(gc_blocking_begin(), NULL);                /* no-op on an unattached thread */
  EXPECT_MESSAGE(gc_blocking_end(), NULL);
  EXPECT_MESSAGE(gc_write_ptr(&slot, &slot), NULL);         /* a plain store: no heap, no barrier */
  EXPECT(slot == &slot);
  EXPECT_MESSAGE(gc_write_ptr(NULL, &slot), "gc_write_ptr(NULL"); /* dropped, not a fault */
  EXPECT_MESSAGE(gc_collect(), "gc_collect");               /* returns at once */
  EXPECT_MESSAGE(gc_free_os_memory(), "gc_free_os_memory");
  gc_add_root(local_root, sizeof local_root);
  gc_remove_root(local_root);
  EXPECT_MESSAGE(gc_remove_root(local_root), "gc_remove_root"); /* unknown root */
  memset(&s, 0xff, sizeof s);
  gc_read_stats(&s);
  /* Before gc_init every figure is zero; after gc_shutdown they are the last heap's
   * (cumulative counters are not reset), so only "no crash" is checked then. */
  if (!strcmp(phase, "before")) {
    gc_stats zero;
    memset(&zero, 0, sizeof zero);
    EXPECT(memcmp(&s, &zero, sizeof s) == 0);  /* gc_percent and procs included */
  }
  EXPECT(gc_read_class_stats(NULL, 0) > 0);
  /* Types do not need a heap (they live as long as the process). */
  EXPECT(gc_type_new("T", 8, offs, 1) != NULL);
  EXPECT(gc_set_oom_handler(oom) == NULL);
  EXPECT(gc_set_oom_handler(NULL) == oom);
  /* The controls change nothing without a heap: gc_init takes its values from its options. */
  EXPECT_MESSAGE(EXPECT(gc_set_percent(7) == 100), "gc_set_percent(7)");
  EXPECT_MESSAGE(EXPECT(gc_set_memory_limit(1 << 20) == 0), "gc_set_memory_limit(1048576)");
  /* The scheduler without a heap. */
  EXPECT_MESSAGE(EXPECT(gc_run(fiber_main, NULL) == -1),
                 !strcmp(phase, "before") ? "gc_run called before gc_init"
                                          : "gc_run called after gc_shutdown");
  EXPECT_MESSAGE(EXPECT(gc_go(fiber_main, NULL) == NULL), "gc_go");  /* not on a fiber */
  EXPECT_MESSAGE(EXPECT(gc_fiber_self() == NULL), NULL);
  EXPECT_MESSAGE(gc_yield(), NULL);          /* yields the thread */
  EXPECT_MESSAGE(gc_sleep(0), NULL);
  EXPECT_MESSAGE(gc_sleep(1000), NULL);      /* sleeps the thread for 1 us */
  EXPECT_MESSAGE(gc_join(NULL), "gc_join(NULL)");
  /* A handle that cannot be valid (no gc_run is on): refused without reading through it. */
  EXPECT_MESSAGE(gc_join((gc_fiber*)&slot), "no gc_run is running");
  EXPECT_MESSAGE(gc_shutdown(), !strcmp(phase, "before") ? "gc_shutdown called before gc_init"
                                                         : "gc_shutdown called twice");
}

/* gc_init refuses options out of range, starts nothing, and a good gc_init works after. */
static void bad_options(void) {
  fprintf(stderr, "---- gc_init with options out of range (each logs a message) ----\n");
  gc_options o;
  const int bad_procs[] = {-1, INT_MIN, 1025, INT_MAX};
  for (size_t i = 0; i < sizeof bad_procs / sizeof bad_procs[0]; i++) {
    gc_options_default(&o);
    o.procs = bad_procs[i];
    EXPECT_MESSAGE(EXPECT(gc_init(&o) == -1), "gc_options.procs");
  }
  const size_t bad_stacks[] = {SIZE_MAX, SIZE_MAX - 4095, ((size_t)1 << 30) + 1};
  for (size_t i = 0; i < sizeof bad_stacks / sizeof bad_stacks[0]; i++) {
    gc_options_default(&o);
    o.fiber_stack_size = bad_stacks[i];
    EXPECT_MESSAGE(EXPECT(gc_init(&o) == -1), "gc_options.fiber_stack_size");
  }
  EXPECT(gc_alloc(16, NULL) == NULL);       /* nothing was started */
  /* Accepted: a stack below the minimum is rounded up; an unwritable heap trace is
   * reported and the heap runs without one. */
  gc_options_default(&o);
  o.procs = 2;
  o.fiber_stack_size = 1;
  o.heap_trace = "/nonexistent-directory/trace.jsonl";
  EXPECT_MESSAGE(EXPECT(gc_init(&o) == 0), "heap trace: cannot write");
  EXPECT(gc_run(fiber_allocates, NULL) == 0);
  gc_shutdown();
}

int main(void) {
  /* Read once, at the first cycle (check-mark) or the first allocation (stress builds). */
  setenv("TRICOLOR_CHECKMARK", "sometimes", 1);
#if TRICOLOR_TEST_STRESS
  setenv("TRICOLOR_STRESS_N", "every-other", 1);
#endif
  without_heap("before");
  bad_options();

  /* A running heap: a second gc_init is an error and changes nothing. */
  capture cap;
  EXPECT(capture_begin(&cap) == 0);
  EXPECT(gc_init(NULL) == 0);
  EXPECT(gc_set_percent(100) == 100);      /* the 7 set before gc_init did not stay */
  EXPECT(gc_set_memory_limit(0) == 0);
  void** list = NULL;
  for (int i = 0; i < 1000; i++) {
    void** n = (void**)gc_alloc(2 * sizeof(void*), NULL);
    EXPECT(n != NULL);
    if (!n) break;
    gc_write_ptr(&n[0], list);
    n[1] = (void*)(intptr_t)i;
    list = n;
  }
  gc_options o;
  gc_options_default(&o);
  gc_collect();                            /* the first cycle reads TRICOLOR_CHECKMARK */
  capture_end(&cap, captured, sizeof captured);
  EXPECT(strstr(captured, "TRICOLOR_CHECKMARK=\"sometimes\" is not valid") != NULL);
#if TRICOLOR_TEST_STRESS
  EXPECT(strstr(captured, "TRICOLOR_STRESS_N=\"every-other\" is not valid") != NULL);
#endif
  EXPECT_MESSAGE(EXPECT(gc_init(&o) == -1), "gc_init called twice");
  EXPECT_MESSAGE(EXPECT(gc_init(NULL) == -1), "gc_init called twice");
  gc_collect();
  int n = 999, ok = 1;
  for (void** p = list; p; p = (void**)p[0], n--) ok &= (intptr_t)p[1] == n;
  EXPECT(ok && n == -1);                   /* the list survived the misuse */
  gc_shutdown();

  without_heap("after");

  /* The heap starts again after a shutdown, with statistics of its own. */
  EXPECT(gc_init(NULL) == 0);
  gc_stats fresh;
  gc_read_stats(&fresh);
  EXPECT(fresh.num_gc == 0 && fresh.mallocs == 0 && fresh.total_alloc == 0 &&
         fresh.pause_total_ns == 0);
  void* p = gc_alloc(64, NULL);
  EXPECT(p != NULL && gc_base(p) == p);
  gc_collect();
  gc_read_stats(&fresh);
  EXPECT(fresh.num_gc == 1 && fresh.mallocs == 1);
  gc_shutdown();

  /* gc_shutdown while cycles are forced every microsecond: a shutdown that met a stop of
   * the world (the registry lock held, this thread waited for) hung within a few rounds. */
  for (int round = 0; round < 30; round++) {
    gc_options fast;
    gc_options_default(&fast);
    fast.force_gc_period_ns = 1000;
    EXPECT(gc_init(&fast) == 0);
    for (int i = 0; i < 200; i++) EXPECT(gc_alloc(64, NULL) != NULL);
    gc_shutdown();
  }

  if (failures) {
    fprintf(stderr, "lifecycle: %d failures\n", failures);
    return 1;
  }
  printf("lifecycle: every call before gc_init, after gc_shutdown and twice behaved as documented\n");
  return 0;
}
