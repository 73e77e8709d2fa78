// Attached threads (Go's M, each holding its own P's mcache), safepoints and stopping the
// world. See lib/gc/README.md, "Threads and safepoints".
//
// INV-STW-1: while the world is stopped, no attached thread runs mutator code: each is
//   either parked at a safepoint (status kStopped) or inside a blocking region (kBlocking),
//   where it touches no heap pointer, and gc_blocking_end waits until the world restarts.
// The handshake is Dekker-style with seq_cst on both sides: the collector stores
//   stw_requested then loads each status; a thread stores its status then loads
//   stw_requested. At least one of them sees the other's store.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "alloc/mcache.h"
#include "gc/stacks.h"

namespace tricolor::internal {

// Go's per-P write-barrier buffer: pointers to shade, flushed to the mark queue when full.
struct WbBuf {
  static constexpr int kEntries = 512;  // Go 1.21+: 512 pointer slots per P
  uintptr_t buf[kEntries];
  int n = 0;
  // The slots of the last allocation run this thread took while marking (take_run) are all
  // black (INV-MARK-2), so the barrier need not queue a pointer into them. The common
  // barriered store is a new object stored into the object that will hold it; without the
  // filter every such store queued the new object, and its flush looked it up only to find
  // it marked. The range is the mcache's (tricolor_cache::black_lo/hi, which gc.h's inline
  // barrier reads too): set by the owner; cleared with the world stopped at mark
  // termination (the run's unused slots are given back then). Empty (lo == hi) when the
  // mark took no run. Whether a barrier must queue v: not null and not in the black run.
  static bool needs(uintptr_t v, uintptr_t black_lo, uintptr_t black_hi) {
    return v != 0 && v - black_lo >= black_hi - black_lo;
  }
};

enum class ThreadStatus : uint32_t {
  kRunning = 0,   // runs mutator code
  kBlocking = 1,  // inside gc_blocking_begin/end: counts as stopped
  kStopped = 2,   // parked at a safepoint while the world is stopped
};

struct ThreadState {
  mcache cache;
  WbBuf wbuf;
  Stack stack;                   // the thread's native stack
  Stack* current = nullptr;      // the stack it runs on now (its own or a fiber's)
  std::atomic<ThreadStatus> status{ThreadStatus::kRunning};
  int blocking_depth = 0;
  // The stack pointer while parked for a stop of the world, below the callee-saved
  // registers spilled by park_for_stw: what the thread holds then lies in [stop_sp, hi)
  // (read by the check-mark mode, lib/gc/checkmark.cc, with the world stopped).
  uintptr_t stop_sp = 0;
  // > 0 while the allocator holds this ThreadState (its mcache) across a safepoint or a
  // blocking region (Go's m.locks): a fiber running here must not resume on another
  // thread meanwhile, so the scheduler neither preempts nor requeues it (lib/sched).
  int locks = 0;
  // > 0 while the thread waits for the collector itself (collector_wait_begin): a blocking
  // region for the collector that keeps the fiber's P (lib/sched does not hand it off).
  int collector_waits = 0;
  // Inside a blocking region of the program's own (gc_blocking_begin), not only collector
  // waits: the region touches no heap pointer (DESIGN.md), and the collector treats the
  // thread as stopped, flushing its write buffer and its allocation runs meanwhile. An
  // allocation there is refused and a barrier shades directly (docs/misuse.md).
  bool in_user_region() const { return blocking_depth > collector_waits; }
  // Allocation since the last assist, during marking. The collector resets it with the
  // world stopped, also for a thread inside a blocking region; a relaxed atomic (plain
  // loads and stores on x86-64) so that reset can never tear or race with the owner.
  std::atomic<int64_t> assist_bytes{0};
  // Fractional marking on a scheduler P (collector.cc, fractional_mark): the mark start of
  // the cycle it counts for, and the marking time this thread has put in since. Owner only.
  uint64_t frac_mark_start = 0;
  uint64_t frac_ns = 0;
  // Bytes this thread allocated black during the current mark (mark_new_object), added to
  // MarkState::bytes_allocated_black with the world stopped at mark termination, or at
  // detach. Owner only, except with the world stopped.
  uint64_t black_bytes = 0;
  // The last ragged flush (flush_write_buffers_ragged) this thread took part in: stored by
  // the thread after it flushed its write-barrier buffer at a safepoint (release).
  std::atomic<uint32_t> flushed_epoch{0};
  uint64_t attach_ns = 0;
  ThreadState* next = nullptr;   // registry links (registry lock)
  ThreadState* prev = nullptr;
  char name[40] = {};
};

// Go's gcMarkDone ragged barrier: asks every running thread to flush its write-barrier
// buffer at its next safepoint (kPollFlush) and waits for them, at most `max_wait_ns`, so
// that mark termination finds the buffers nearly empty and its pause does not grey their
// contents. Threads in a blocking region keep their buffers for the pause. The world runs.
void flush_write_buffers_ragged(uint64_t max_wait_ns);

// Pins the calling fiber to its thread while in scope (ThreadState::locks).
struct ThreadPin {
  ThreadState* t;
  explicit ThreadPin(ThreadState* ts) : t(ts) { t->locks++; }
  ~ThreadPin() { t->locks--; }
  ThreadPin(const ThreadPin&) = delete;
  ThreadPin& operator=(const ThreadPin&) = delete;
};

// A short wait for the collector (the cycle a trigger asked for to start, credit for a
// parked assist): a blocking region as far as the collector goes (the world may stop, the
// stack may be scanned meanwhile), but a fiber keeps its P. Go's equivalents do not hand
// their P to another thread either (gcStart runs on the allocating goroutine); a hand-off
// would start a thread per waiting fiber, and each would begin more work that waits for
// the same cycle. Nothing when the thread is not attached.
void collector_wait_begin();
void collector_wait_end();

// The calling thread's state, or nullptr if it is not attached. initial-exec TLS: one
// instruction on x86-64.
extern constinit thread_local ThreadState* tls_thread __attribute__((tls_model("initial-exec")));
// Not checked by UBSan: its null-pointer check misreads the thread-pointer-relative address
// of an initial-exec variable (a false report; the load itself is always valid).
__attribute__((no_sanitize_undefined)) inline ThreadState* current_thread() { return tls_thread; }

// Thread registry. The lock also serialises stop-the-world with attach/detach.
struct ThreadRegistry {
  std::mutex lock;
  ThreadState* head = nullptr;
  int count = 0;
};
ThreadRegistry& threads();

// How many attached threads run mutator code now (not parked, not in a blocking region),
// counting up to `cap`; -1 when the registry is busy (a stop of the world, an attach).
// Each status is read relaxed: a hint for the mark workers' pacing, never for safety.
int running_threads_hint(int cap);

// Stops every attached thread at a safepoint (or accepts it inside a blocking region).
// Called by the collector's own thread, which is not attached, or by an attached thread
// that is itself inside a blocking region. Holds the registry lock until start_the_world.
// Returns the ns spent waiting for threads to stop.
uint64_t stop_the_world(const char* why);
// Releases the stopped threads; returns the monotonic time at which they were released,
// the end of the pause (as Go's startTheWorld: the waking and rescheduling of the released
// threads that follows is the OS's, not the pause's).
uint64_t start_the_world();
bool world_stopped();

// Called by the safepoint slow path and the allocation slow path.
// may_yield false: the allocator's safepoint, which stops for the collector (a stop of the
// world, this thread's stack scan, stress collections) but never yields the fiber: a fiber
// does not move to another thread inside gc_alloc (its caller may hold thread-local state
// across the call); a preemption request waits for the next gc_safepoint or yield.
void safepoint_slow(ThreadState* t, bool may_yield = true);

// Calls f(ThreadState*) for each attached thread (world stopped, registry lock held).
template <class F>
void for_each_thread_stopped(F&& f) {
  for (ThreadState* t = threads().head; t; t = t->next) f(t);
}

// Detaches every thread still attached (gc_shutdown).
void detach_all_for_shutdown();
// Attached threads other than the caller (gc_shutdown refuses while there are any).
int other_attached_threads();
// Names threads that do not reach a safepoint for a second (never a silent hang).
// stop_the_world reads stop_warn_ns(), kStopWarnNs unless a test shortened it.
inline constexpr uint64_t kStopWarnNs = 1000000000;
uint64_t stop_warn_ns();
// How long stop_the_world spins on a running thread before it sleeps between polls.
inline constexpr uint64_t kStopSpinNs = 50000;

}  // namespace tricolor::internal
