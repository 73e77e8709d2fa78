// The fiber scheduler (G/M/P): internal structures and the hooks for tests. See README.md in
// this folder for the overview, the algorithm and the invariants (INV-SCHED-*).
//
// Synchronisation key used on the fields below:
//   (owner)  only the M holding the P (for P fields) or running the G (for G fields)
//   (lock)   the scheduler lock, Sched::lock
//   (atomic) any thread, with the ordering given where it is used
#pragma once

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "gc/stacks.h"
#include "os/stack.h"
#include "sched/context.h"
#include "sched/runq.h"
#include "tricolor/fiber.h"

namespace tricolor::internal {

struct ThreadState;
struct M;
struct P;
struct G;

// A context the M can run on: a fiber's stack or the M's own thread stack ("g0").
struct Coro {
  void* sp = nullptr;          // saved by tricolor_ctx_switch while switched out (owner)
  Stack* stack = nullptr;      // the collector's record of this stack
  G* g = nullptr;              // the fiber, or nullptr for the thread stack
  void* tsan_fiber = nullptr;  // TSan's fiber object (TSan builds)
  void* asan_fake = nullptr;   // ASan's fake stack while switched out (ASan builds)
  EhState eh;                  // its exception-handling state while switched out (owner)
};

enum class GStatus : uint32_t {
  kFree = 0,      // on a free list; a handle to it was joined
  kRunnable = 1,  // in a run queue (or about to be)
  kRunning = 2,   // on an M
  kWaiting = 3,   // parked: in gc_join, gc_sleep, or requeued after a blocking region
  kDead = 4,      // returned; its stack is gone; waits to be joined
};

// G: a fiber. Its handle (gc_fiber*) is the G itself; G objects live in slabs freed at the
// end of gc_run, so a handle is memory-safe until then.
struct G {
  Coro co;
  Stack stack;                          // registered from its first fiber on; retired (kDead) between fibers
  bool stack_registered = false;        // owner (the spawner, then the fiber)
  StackMem mem;                         // its stack memory while alive (owner)
  gc_fiber_fn fn = nullptr;
  std::atomic<GStatus> status{GStatus::kFree};
  // Who waits in gc_join: nullptr, a G, or one of the markers below. Exchanged with
  // kJoinDone (acq_rel) when the fiber is dead, after its last access to this G.
  std::atomic<G*> joiner{nullptr};
  bool join_failed = false;             // set when a second joiner lost the race (owner)
  uint64_t wake_ns = 0;                 // gc_sleep deadline (owner, then the timer lock)
  uint64_t id = 0;
  G* schedlink = nullptr;               // global queue / free list link (lock or owner)
};
inline G* const kJoinDone = reinterpret_cast<G*>(uintptr_t{1});
inline G* const kThreadJoiner = reinterpret_cast<G*>(uintptr_t{2});

enum class PStatus : uint32_t {
  kIdle = 0,      // on the idle list (lock), or being handed to an M
  kRunning = 1,   // held by an M that runs fibers or looks for work
  kBlocking = 2,  // its M is in a blocking region: sysmon may retake it (CAS to kIdle)
};

inline constexpr int kPStackCache = 32;  // free stacks cached per P
inline constexpr int kPGCache = 64;      // free G objects cached per P

struct alignas(64) P {
  int id = 0;
  std::atomic<PStatus> status{PStatus::kIdle};
  M* m = nullptr;                       // the M holding it (written by the acquirer)
  LocalRunq runq;
  // Incremented at every schedule (owner; relaxed: sysmon only compares two readings).
  std::atomic<uint32_t> schedtick{0};
  // Incremented when the P's M enters a blocking region (owner; relaxed, as above).
  std::atomic<uint32_t> blocktick{0};
  std::atomic<bool> preempt{false};     // sysmon asks the running fiber to yield
  // sysmon's last observation (sysmon thread only).
  uint32_t sysmon_schedtick = 0;
  uint64_t sysmon_schedwhen = 0;
  uint32_t sysmon_blocktick = 0;
  uint64_t sysmon_blockwhen = 0;
  // Free lists (owner).
  G* gfree = nullptr;
  int ngfree = 0;
  StackMem stacks[kPStackCache];
  int nstacks = 0;
  P* link = nullptr;                    // idle list (lock)
  // Counters for tests and benchmarks (owner writes; relaxed: statistics).
  std::atomic<uint64_t> nrun{0};        // fibers switched to on this P
  std::atomic<uint64_t> nsteal{0};      // fibers stolen from other P's
  std::atomic<uint64_t> npreempt{0};    // preemption requests honoured
  std::atomic<uint64_t> nretaken{0};    // times sysmon took this P from a blocked M
};

// An alternate signal stack a thread runs its SIGSEGV handler on (overflow.cc), and the one
// it replaced.
struct AltStack {
  void* map = nullptr;  // nullptr: none installed (sanitizer build, or the OS refused)
  size_t map_size = 0;
  stack_t old{};
};

// M: a worker thread. Every M is an attached thread (gc_thread_attach), so it has its own
// ThreadState and thus its own mcache and write-barrier buffer (see README.md, "The mcache").
struct M {
  int id = 0;
  ThreadState* t = nullptr;  // set by the M itself once attached
  Coro g0;                   // the thread's own stack (the scheduler loop runs there)
  EhState* eh = nullptr;     // the thread's exception-handling state (context.h)
  G* curg = nullptr;         // the fiber running, nullptr on g0 (owner)
  P* p = nullptr;            // the P held, or nullptr (owner; sysmon never writes it)
  P* nextp = nullptr;        // a P handed over by startm (park_mu)
  bool spinning = false;     // counted in Sched::nmspinning (owner)
  bool blocking = false;     // in a blocking region that released its P to sysmon (owner)
  bool nop = false;          // runs a fiber without a P (pinned; counted in Sched::nmnop)
  // The action the context switched to runs on behalf of the context switched from (owner).
  void (*post_fn)(M* m, Coro* prev, void* arg) = nullptr;
  void* post_arg = nullptr;
  Coro* prev = nullptr;
  bool prev_dead = false;
  // Sleeping in stopm.
  std::mutex park_mu;
  std::condition_variable park_cv;
  bool woken = false;        // park_mu
  M* link = nullptr;         // idle list (lock)
  bool idle = false;         // on the idle list (lock)
  std::thread* thread = nullptr;  // nullptr for M0, the thread that called gc_run
  AltStack sigstack;         // while the M runs the scheduler (owner)
};

// The longest single wait on a condition variable for a timer (an hour; the waiter looks
// again): steady_clock's now() + d overflows for a deadline centuries away.
inline constexpr uint64_t kMaxParkNs = uint64_t{3600} * 1000000000;

// ---- Internal API (tests, benchmarks) --------------------------------------------------

struct SchedPStats {
  uint64_t fibers_run = 0;
  uint64_t steals = 0;
  uint64_t preemptions = 0;
  uint64_t retaken = 0;
};

// Number of P's the next gc_run uses (0: configured_procs(), the gc_options.procs value).
void sched_set_procs(int n);
// P's of the running gc_run, or of the last one once it returned.
int sched_procs();
// Counters of P i, live during gc_run, kept after it returns.
SchedPStats sched_p_stats(int i);
// The P the calling fiber runs on, -1 when not on a fiber.
int sched_current_p();
// True once the fiber is parked in gc_join or gc_sleep (for tests that need it parked).
bool sched_fiber_waiting(gc_fiber* f);
// Worker threads (M's) created by the running or last gc_run, M0 included.
int sched_threads();
// Preemption requests sent by sysmon, P's retaken from blocked M's (running or last run).
uint64_t sched_preempt_requests();
uint64_t sched_retakes();
// The next n worker threads the scheduler starts fail to start, as pthread_create does
// under a thread limit (EAGAIN).
void test_fail_new_ms(int n);
// Worker threads that could not be started (running or last gc_run).
uint64_t sched_failed_ms();

// ---- Shared between proc.cc and sysmon.cc -------------------------------------------------

void sysmon_start();
void sysmon_stop();
void sysmon_wake();  // the scheduler left the all-idle state (or is shutting down)
int sched_nprocs();
P* sched_p(int i);
// Retake a P from a blocked M (sysmon): CAS kBlocking -> kIdle was done by the caller.
void handoffp(P* p);
// Timers (gc_sleep): readies fibers whose deadline passed; returns the next deadline.
uint64_t run_timers(uint64_t now);
uint64_t next_timer_ns();
bool sched_all_idle();
int64_t sched_nmnop();

// ---- Fiber stack overflow (overflow.cc) --------------------------------------------------

// Installs the SIGSEGV/SIGBUS handler that reports a fiber stack overflow, once per process
// (at the first gc_run). No-op under ASan and TSan, which report overflows themselves.
void overflow_handler_install();
// Gives the calling thread its own signal stack for as long as it is an M, and restores
// the one it had before. No-ops under ASan and TSan.
void altstack_begin(AltStack* a);
void altstack_end(AltStack* a);
// False under ASan and TSan: no handler, a stack overflow is theirs to report.
bool overflow_reporting();
// The stack memory of the fiber running on the calling thread; false when the thread is no
// M or runs no fiber. Async-signal-safe (initial-exec TLS, no locks): the handler calls it.
bool sched_fiber_stack_of_thread(StackMem* out);

}  // namespace tricolor::internal
