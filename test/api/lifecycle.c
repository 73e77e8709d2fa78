/* Misuse of the public API around the heap's lifetime, in C (gc.h compiles as C11): every
 * entry point called before gc_init, a second gc_init, every entry point after
 * gc_shutdown, a second gc_shutdown, and a heap started again afterwards. Each call must
 * return its documented error value (docs/misuse.md) and the process must not crash.
 * This is its own process: "before gc_init" needs a process where gc_init never ran. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void oom(size_t n) { (void)n; }
static void fiber_main(void* arg) { (void)arg; }

/* Every entry point with a heap that is not running (phase: "before" or "after"). */
static void without_heap(const char* phase) {
  fprintf(stderr, "---- calls %s the heap's lifetime (each logs a message) ----\n", phase);
  void* slot = NULL;
  static long local_root[4];
  gc_stats s;
  size_t offs[1] = {0};

  EXPECT(gc_alloc(16, NULL) == NULL);
  EXPECT(gc_alloc_noscan(16) == NULL);
  EXPECT(gc_alloc_noscan(3) == NULL);
  EXPECT(gc_base(&slot) == NULL);
  EXPECT(gc_size(&slot) == 0);
  EXPECT(gc_thread_attach() == -1);
  gc_thread_detach();                      /* message: not attached */
  gc_safepoint();                          /* nothing to do */
  gc_blocking_begin();                     /* no-op on an unattached thread */
  gc_blocking_end();
  gc_write_ptr(&slot, &slot);              /* a plain store: no heap, no barrier */
  EXPECT(slot == &slot);
  gc_collect();                            /* message, returns at once */
  gc_free_os_memory();                     /* message */
  gc_add_root(local_root, sizeof local_root);
  gc_remove_root(local_root);
  gc_remove_root(local_root);              /* message: unknown root */
  memset(&s, 0xff, sizeof s);
  gc_read_stats(&s);
  /* Before gc_init every figure is zero; after gc_shutdown they are the last heap's
   * (cumulative counters are not reset), so only "no crash" is checked then. */
  if (!strcmp(phase, "before")) EXPECT(s.heap_objects == 0 && s.num_gc == 0);
  EXPECT(gc_read_class_stats(NULL, 0) > 0);
  /* Types do not need a heap (they live as long as the process). */
  EXPECT(gc_type_new("T", 8, offs, 1) != NULL);
  EXPECT(gc_set_oom_handler(oom) == NULL);
  EXPECT(gc_set_oom_handler(NULL) == oom);
  EXPECT(gc_run(fiber_main, NULL) == -1);  /* message: no heap */
  EXPECT(gc_go(fiber_main, NULL) == NULL); /* message: not on a fiber */
  gc_shutdown();                           /* message: not running */
}

int main(void) {
  without_heap("before");

  /* A running heap: a second gc_init is an error and changes nothing. */
  EXPECT(gc_init(NULL) == 0);
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
  EXPECT(gc_init(&o) == -1);               /* message: already running */
  EXPECT(gc_init(NULL) == -1);
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

  if (failures) {
    fprintf(stderr, "lifecycle: %d failures\n", failures);
    return 1;
  }
  printf("lifecycle: every call before gc_init, after gc_shutdown and twice behaved as documented\n");
  return 0;
}
