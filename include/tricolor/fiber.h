/* tricolor: the fiber scheduler (G/M/P), C API. Compiles as C11 and as C++.
 *
 * Fibers are lightweight threads with their own stacks, run by `procs` worker threads.
 * Their stacks are scanned by the collector (conservatively), so a heap pointer held only
 * in a local variable of a parked fiber keeps its object alive.
 */
#ifndef TRICOLOR_FIBER_H_
#define TRICOLOR_FIBER_H_

#include <stdint.h>

#include "gc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gc_fiber gc_fiber;
typedef void (*gc_fiber_fn)(void* arg);

/* Run main_fn(arg) as the first fiber on `procs` worker threads (the caller is one);
 * returns when every fiber is done. 0 on success, -1 on misuse (nested call, no gc_init). */
TRICOLOR_API int gc_run(gc_fiber_fn main_fn, void* arg);
/* Spawn a fiber ("go fn(arg)"). The handle stays valid until gc_join returns for it;
 * a fiber that nobody joins is released when gc_run returns. NULL, with a message, outside
 * gc_run, inside gc_blocking_begin/end, and when the OS refuses to map the fiber's stack
 * (each stack is two kernel mappings: with Linux's default vm.max_map_count of 65530,
 * about 32 000 fibers can be alive at once). */
TRICOLOR_API gc_fiber* gc_go(gc_fiber_fn fn, void* arg);
TRICOLOR_API void gc_yield(void);           /* Gosched */
TRICOLOR_API void gc_join(gc_fiber* f);     /* park until f has returned; once per fiber */
TRICOLOR_API void gc_sleep(uint64_t ns);    /* park the fiber (or the thread) for ns */
TRICOLOR_API gc_fiber* gc_fiber_self(void); /* the running fiber, NULL on a plain thread */

#ifdef __cplusplus
}
#endif

#endif /* TRICOLOR_FIBER_H_ */
