// Attached threads, safepoints, blocking regions and stopping the world. See thread.h.
#include "gc/thread.h"

#include "tricolor/gc.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>

#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/testing.h"
#include "os/clock.h"
#include "os/cpu.h"
#include "trace/log.h"

extern "C" {
TRICOLOR_API uint32_t tricolor_poll_request = 0;
// gc.h's inline allocation fast paths bump this cache (the thread's mcache); set with
// tls_thread (set_tls_thread). Stress builds leave it NULL: every allocation then calls the
// library, which collects on allocation.
TRICOLOR_API __thread tricolor_cache* tricolor_tls_cache __attribute__((tls_model("initial-exec"))) = nullptr;
}

namespace tricolor::internal {

constinit thread_local ThreadState* tls_thread __attribute__((tls_model("initial-exec"))) = nullptr;

// The inline fast paths' view of the thread's cache (gc.h) must agree with the library's.
static_assert(kPollPreempt == 8 && tricolor_poll_alloc_mask_ == ~int(kPollPreempt));

namespace {
void set_tls_thread(ThreadState* t) {
  tls_thread = t;
  tricolor_tls_cache = t && !TRICOLOR_STRESS ? &t->cache : nullptr;
}
}  // namespace

namespace {
ThreadRegistry g_threads;
std::atomic<bool> g_stw_requested{false};
std::atomic<uint64_t> g_stop_warn_ns{kStopWarnNs};  // set_stop_warn_ns (gc/testing.h)
std::atomic<uint64_t> g_unpark_delay_ns{0};        // test_set_unpark_delay (gc/testing.h)
std::atomic<uint32_t> g_flush_epoch{0};            // flush_write_buffers_ragged
std::mutex g_stw_mu;                 // guards the waits below
std::condition_variable& g_stw_cv = *new std::condition_variable;  // leaked: waited on at exit — threads wait here for the world to restart
std::condition_variable& g_stopped_cv = *new std::condition_variable;  // leaked: waited on at exit — the collector waits here for threads to stop

void thread_stack_bounds(uintptr_t* lo, uintptr_t* hi) {
  pthread_attr_t attr;
  void* addr = nullptr;
  size_t size = 0;
  pthread_getattr_np(pthread_self(), &attr);
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  *lo = reinterpret_cast<uintptr_t>(addr);
  *hi = *lo + size;
}

// Parks the calling thread until the world restarts (INV-STW-1).
[[gnu::noinline]] void park_for_stw(ThreadState* t) {
  __builtin_unwind_init();  // callee-saved registers to this frame, above `here`
  volatile uintptr_t here = 0;
  t->stop_sp = reinterpret_cast<uintptr_t>(&here);  // published by the seq_cst store below
  std::unique_lock<std::mutex> g(g_stw_mu);
  for (;;) {
    while (g_stw_requested.load(std::memory_order_seq_cst)) {
      t->status.store(ThreadStatus::kStopped, std::memory_order_seq_cst);
      g_stopped_cv.notify_all();
      g_stw_cv.wait(g);
    }
    if (uint64_t ns = g_unpark_delay_ns.load(std::memory_order_relaxed)) {
      for (uint64_t t0 = monotonic_ns(); monotonic_ns() - t0 < ns;) {
      }
    }
    // Dekker with stop_the_world, which stores its request and then reads each status:
    // publish "running", then look for a request again. A next stop may have begun after
    // the load above (it does not take g_stw_mu) and read this thread's old kStopped; the
    // thread must not run on into it.
    t->status.store(ThreadStatus::kRunning, std::memory_order_seq_cst);
    if (!g_stw_requested.load(std::memory_order_seq_cst)) return;
  }
}

}  // namespace

ThreadRegistry& threads() { return g_threads; }

int running_threads_hint(int cap) {
  std::unique_lock<std::mutex> g(g_threads.lock, std::try_to_lock);
  if (!g.owns_lock()) return -1;
  int n = 0;
  for (ThreadState* t = g_threads.head; t && n < cap; t = t->next)
    n += t->status.load(std::memory_order_relaxed) == ThreadStatus::kRunning;
  return n;
}
bool world_stopped() { return g_stw_requested.load(std::memory_order_seq_cst); }

// Relaxed: a setting; a stale read only delays the warning.
uint64_t stop_warn_ns() { return g_stop_warn_ns.load(std::memory_order_relaxed); }
void set_stop_warn_ns(uint64_t ns) {
  g_stop_warn_ns.store(ns ? ns : kStopWarnNs, std::memory_order_relaxed);
}

void test_stop_the_world() { stop_the_world("test"); }
void test_start_the_world() { start_the_world(); }
void test_set_unpark_delay(uint64_t ns) { g_unpark_delay_ns.store(ns, std::memory_order_relaxed); }

uint64_t stop_the_world(const char* why) {
  uint64_t t0 = monotonic_ns();
  g_threads.lock.lock();
  g_stw_requested.store(true, std::memory_order_seq_cst);
  poll_set(kPollStopTheWorld);
  bool warned = false;
  uint64_t warn_ns = stop_warn_ns();
  for (ThreadState* t = g_threads.head; t; t = t->next) {
    // Spin first: a running thread usually reaches a safepoint within microseconds, sooner
    // than a sleep on the condition variable would wake up (tens of microseconds).
    uint64_t spin_start = monotonic_ns();
    while (t->status.load(std::memory_order_seq_cst) == ThreadStatus::kRunning) {
      uint64_t now = monotonic_ns();
      if (now - spin_start < kStopSpinNs) {
        spin_or_yield(spin_start, now);
        continue;
      }
      std::unique_lock<std::mutex> g(g_stw_mu);
      if (t->status.load(std::memory_order_seq_cst) != ThreadStatus::kRunning) break;
      g_stopped_cv.wait_for(g, std::chrono::microseconds(100));
      if (!warned && monotonic_ns() - t0 > warn_ns) {
        warned = true;
        log_warn("stopping the world (%s): thread '%s' has not reached a safepoint for %g s; "
                 "long loops must call gc_safepoint(), waits must be inside "
                 "gc_blocking_begin/end", why, t->name, double(warn_ns) / 1e9);
      }
    }
  }
  return monotonic_ns() - t0;
}

uint64_t start_the_world() {
  uint64_t released;
  {
    std::lock_guard<std::mutex> g(g_stw_mu);
    g_stw_requested.store(false, std::memory_order_seq_cst);
    poll_clear(kPollStopTheWorld);
    released = monotonic_ns();
  }
  g_stw_cv.notify_all();
  g_threads.lock.unlock();
  return released;
}

void safepoint_slow(ThreadState* t, bool may_yield) {
  uint32_t req = __atomic_load_n(&tricolor_poll_request, __ATOMIC_SEQ_CST);
  if ((req & kPollStopTheWorld) && g_stw_requested.load(std::memory_order_seq_cst)) park_for_stw(t);
  if ((req & kPollStackScan) && !test_hold_on()) scan_own_stack(t);
  if (req & kPollFlush) {
    uint32_t e = g_flush_epoch.load(std::memory_order_acquire);
    if (t->flushed_epoch.load(std::memory_order_relaxed) != e) {
      flush_wbuf(t);
      t->flushed_epoch.store(e, std::memory_order_release);
    }
  }
  if ((req & kPollPreempt) && may_yield) sched_safepoint();
  if (req & kPollStress) stress_safepoint(t);
}

void flush_write_buffers_ragged(uint64_t max_wait_ns) {
  uint32_t e = g_flush_epoch.fetch_add(1, std::memory_order_acq_rel) + 1;
  poll_set(kPollFlush);
  {
    // The registry lock keeps the ThreadStates alive; a thread that attaches or detaches
    // meanwhile waits (detach marks itself blocking first, so it is not waited for).
    std::lock_guard<std::mutex> g(g_threads.lock);
    uint64_t t0 = monotonic_ns();
    for (ThreadState* t = g_threads.head; t; t = t->next) {
      // Acquire: pairs with the thread's release store after its flush (its greys are in
      // the work queue when the controller looks at the queue next).
      while (t->flushed_epoch.load(std::memory_order_acquire) != e &&
             t->status.load(std::memory_order_seq_cst) == ThreadStatus::kRunning) {
        uint64_t now = monotonic_ns();
        if (now - t0 > max_wait_ns) break;
        spin_or_yield(t0, now);
      }
    }
  }
  poll_clear(kPollFlush);
}

namespace {
// A thread that ends while attached is detached by this key's destructor (pthread runs it
// at the thread's exit, not at the process's): left in the registry, its record named a
// thread that no longer exists, and the next stop of the world waited for it forever.
pthread_key_t g_exit_key;
std::once_flag g_exit_key_once;
void detach_at_thread_exit(void* record) {
  ThreadState* t = tls_thread;
  if (!t || t != record) return;
  log_warn("thread '%s' ended while attached: detached it (call gc_thread_detach before a "
           "thread ends)", t->name);
  gc_thread_detach();
}
void watch_thread_exit(ThreadState* t) {
  std::call_once(g_exit_key_once, [] {
    if (pthread_key_create(&g_exit_key, detach_at_thread_exit) != 0)
      log_error("cannot create the thread-exit key: a thread that ends attached is not detached");
  });
  pthread_setspecific(g_exit_key, t);
}
void unwatch_thread_exit() {
  if (pthread_getspecific(g_exit_key)) pthread_setspecific(g_exit_key, nullptr);
}
}  // namespace

int other_attached_threads() {
  std::lock_guard<std::mutex> g(g_threads.lock);
  int n = 0;
  for (ThreadState* t = g_threads.head; t; t = t->next) n += t != tls_thread;
  return n;
}

void detach_all_for_shutdown() {
  std::lock_guard<std::mutex> g(g_threads.lock);
  while (ThreadState* t = g_threads.head) {
    g_threads.head = t->next;
    // No mark runs (the controller and workers have stopped): the runs' free slots go back,
    // so the last heap's figures count only the objects handed out.
    t->cache.release_all(/*give_back=*/__atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) == 0);
    t->cache.release_pages();
    stack_unregister(&t->stack);
    if (t == tls_thread) {
      set_tls_thread(nullptr);
      unwatch_thread_exit();
    }
    delete t;
  }
  g_threads.count = 0;
  set_current_stack(nullptr);
}

}  // namespace tricolor::internal

using namespace tricolor::internal;

extern "C" {

void tricolor_safepoint_slow(void) {
  if (ThreadState* t = tls_thread) safepoint_slow(t);
}

int gc_thread_attach(void) {
  if (tls_thread) return 0;
  if (!collector_initialized()) {
    log_error("gc_thread_attach called %s", ever_initialized() ? "after gc_shutdown" : "before gc_init");
    return -1;
  }
  auto* t = new ThreadState();
  t->cache.init();
  uintptr_t lo, hi;
  thread_stack_bounds(&lo, &hi);
  snprintf(t->name, sizeof t->name, "tid %ld", static_cast<long>(syscall(SYS_gettid)));
  t->attach_ns = monotonic_ns();
  {
    // The registry lock is held during a stop of the world, so attaching waits it out.
    std::lock_guard<std::mutex> g(g_threads.lock);
    stack_register(&t->stack, lo, hi, "thread");
    t->next = g_threads.head;
    if (g_threads.head) g_threads.head->prev = t;
    g_threads.head = t;
    g_threads.count++;
  }
  stack_unpark(&t->stack);
  set_tls_thread(t);
  set_current_stack(&t->stack);
  watch_thread_exit(t);
  return 0;
}

int gc_thread_is_attached(void) { return tls_thread != nullptr; }

void gc_thread_detach(void) {
  ThreadState* t = tls_thread;
  if (!t) {
    log_error("gc_thread_detach called on a thread that is not attached");
    return;
  }
  if (t->current != &t->stack) {
    // A fiber runs on a scheduler thread, whose record the scheduler keeps using: freed
    // here, the fiber's next yield read freed memory.
    log_error("gc_thread_detach called on a fiber (its thread belongs to the scheduler): ignored");
    return;
  }
  unwatch_thread_exit();
  // Count as stopped while waiting for the registry lock (a stop of the world holds it).
  t->blocking_depth = 0;
  gc_blocking_begin();
  {
    std::lock_guard<std::mutex> g(g_threads.lock);
    // The runs' slots go back to their spans unless a mark runs (a stop of the world holds
    // this lock, so the phase holds still): then markers may be reading the spans, and the
    // slots, marked black, stay allocated until the next cycle's sweep.
    t->cache.release_all(/*give_back=*/__atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) == 0);
    t->cache.release_pages();
    flush_wbuf(t);
    // Relaxed: read at mark termination, which holds this lock.
    mark_state().bytes_allocated_black.fetch_add(t->black_bytes, std::memory_order_relaxed);
    stack_unregister(&t->stack);
    if (t->prev) t->prev->next = t->next; else g_threads.head = t->next;
    if (t->next) t->next->prev = t->prev;
    g_threads.count--;
  }
  set_tls_thread(nullptr);
  set_current_stack(nullptr);
  delete t;
}

// gc_blocking_begin's body, called by its entry (below) with the caller's callee-saved
// registers as they were at the call, and the caller's stack pointer.
[[gnu::used, gnu::visibility("hidden")]] void tricolor_blocking_begin_saved(const uintptr_t* regs,
                                                                         uintptr_t sp) {
  ThreadState* t = tls_thread;
  if (!t) return;  // an unattached thread holds no heap pointer: nothing to do
  if (t->blocking_depth++ > 0) return;
  // gc.h's inline allocation and barrier paths find no cache inside a region of the
  // program's own and call the library, which refuses the allocation and shades the
  // barrier's values directly: the collector, which counts this thread as stopped, may
  // flush the thread's runs and write buffer meanwhile (a client's allocation inside a
  // region corrupted the heap). Restored by the gc_blocking_end that closes the region.
  if (t->collector_waits == 0) tricolor_tls_cache = nullptr;
  stack_park_saved(t->current, regs, sp);
  t->status.store(ThreadStatus::kBlocking, std::memory_order_seq_cst);
  g_stopped_cv.notify_all();
  if (t->collector_waits == 0) sched_blocking_begin();
}

void gc_blocking_end(void) {
  ThreadState* t = tls_thread;
  if (!t) return;
  if (t->blocking_depth == 0) {
    log_error("gc_blocking_end without gc_blocking_begin");
    return;
  }
  if (--t->blocking_depth > 0) return;
  set_tls_thread(t);  // the cache again (tricolor_blocking_begin_saved)
  // Dekker with stop_the_world: publish "running", then look for a stop request.
  t->status.store(ThreadStatus::kRunning, std::memory_order_seq_cst);
  if (g_stw_requested.load(std::memory_order_seq_cst)) {
    t->status.store(ThreadStatus::kBlocking, std::memory_order_seq_cst);
    g_stopped_cv.notify_all();
    park_for_stw(t);
  }
  stack_unpark(t->current);
  sched_blocking_end();
  gc_safepoint();
}

}  // extern "C"

// gc_blocking_begin's entry, in assembly: it saves the caller's callee-saved registers on
// its own stack before any code of the library runs, and passes them with the caller's
// stack pointer to tricolor_blocking_begin_saved. The stack is scanned from that pointer
// up, and the registers from the copy in the Stack record. A C++ gc_blocking_begin that
// saved them from a function it called saved its own values instead: its prologue had
// pushed the caller's rbx and rbp into its frame and reused the registers (rbx for the
// thread's record), and that frame, below the caller's stack pointer, was overwritten
// once it returned, by the lock wait it announced. An object held only in rbx across
// `gc_blocking_begin(); pthread_mutex_lock(...)` was freed (a client's test: 19 of 20).
#if !defined(__ELF__)
#error "tricolor: gc_blocking_begin's entry is written for ELF targets"
#endif
#if defined(__x86_64__)
static_assert(tricolor::internal::kEntrySavedRegs == 6);
asm(R"(
    .text
    .globl gc_blocking_begin
    .type gc_blocking_begin, @function
    .p2align 4
gc_blocking_begin:
    .cfi_startproc
    endbr64
    subq $56, %rsp
    .cfi_adjust_cfa_offset 56
    movq %rbx, 0(%rsp)
    movq %rbp, 8(%rsp)
    movq %r12, 16(%rsp)
    movq %r13, 24(%rsp)
    movq %r14, 32(%rsp)
    movq %r15, 40(%rsp)
    movq %rsp, %rdi
    leaq 64(%rsp), %rsi
    call tricolor_blocking_begin_saved
    addq $56, %rsp
    .cfi_adjust_cfa_offset -56
    ret
    .cfi_endproc
    .size gc_blocking_begin, .-gc_blocking_begin
)");
#elif defined(__aarch64__)
static_assert(tricolor::internal::kEntrySavedRegs == 11);
asm(R"(
    .text
    .globl gc_blocking_begin
    .type gc_blocking_begin, %function
    .p2align 4
gc_blocking_begin:
    .cfi_startproc
    hint #34
    sub sp, sp, #96
    .cfi_def_cfa_offset 96
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    mov x0, sp
    add x1, sp, #96
    bl tricolor_blocking_begin_saved
    ldr x30, [sp, #88]
    add sp, sp, #96
    .cfi_def_cfa_offset 0
    .cfi_restore x30
    .cfi_restore x29
    ret
    .cfi_endproc
    .size gc_blocking_begin, .-gc_blocking_begin
)");
#else
#error "tricolor: gc_blocking_begin's entry is written for x86-64 and aarch64"
#endif

namespace tricolor::internal {
void collector_wait_begin() {
  ThreadState* t = tls_thread;
  if (!t) return;
  t->collector_waits++;
  gc_blocking_begin();
}
void collector_wait_end() {
  ThreadState* t = tls_thread;
  if (!t) return;
  gc_blocking_end();  // sched_blocking_end does nothing: the P was never released
  t->collector_waits--;
}
}  // namespace tricolor::internal

// Default scheduler hooks for a build without lib/sched objects linked in (static linking
// of a program that never uses fibers): no scheduler, nothing to hand off.
namespace tricolor::internal {
[[gnu::weak]] void sched_blocking_begin() {}
[[gnu::weak]] void sched_blocking_end() {}
[[gnu::weak]] void sched_safepoint() {}
[[gnu::weak]] int sched_current_p() { return -1; }
[[gnu::weak]] int sched_active_procs() { return 0; }
}  // namespace tricolor::internal
