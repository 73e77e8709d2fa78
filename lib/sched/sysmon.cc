// sysmon: the scheduler's monitor thread (Go's sysmon). See README.md, step 6.
//
// It runs without a P and is not an attached thread (it touches no heap pointer). Each
// tick it:
//   1. readies the fibers whose gc_sleep deadline passed, if no worker did;
//   2. retakes a P whose M has been inside a blocking region for a whole tick (>= 20 us),
//      and hands it to another M (handoffp), so the P's other fibers keep running;
//   3. asks a fiber that has run for 10 ms without a schedule on its P to yield: it sets
//      P::preempt and kPollPreempt; the fiber honours it at its next safepoint
//      (sched_safepoint, proc.cc).
// It sleeps 20 us between ticks while it finds work, doubling up to 10 ms after 50 idle
// ticks, and sleeps until woken while every P is idle and no timer is pending.
//
// Go's sysmon also forces a GC after 2 minutes without one and paces the scavenger; here the
// collector's controller thread does both (lib/gc/collector.cc, controller_loop), next to
// the heap state they need, so sysmon leaves them there.
#include <condition_variable>
#include <mutex>
#include <thread>

#include "os/cpu.h"
#include "gc/stacks.h"
#include "os/clock.h"
#include "sched/sched.h"

extern "C" uint32_t tricolor_poll_request;

namespace tricolor::internal {

namespace {

constexpr uint64_t kMinDelayNs = 20000;       // 20 us, Go's first sysmon delay
constexpr uint64_t kMaxDelayNs = 10000000;    // 10 ms
constexpr uint64_t kRetakeNs = 20000;         // a P blocked this long goes to another M
constexpr uint64_t kPreemptNs = 10000000;     // Go's forcePreemptNS

std::mutex g_mu;
std::condition_variable& g_cv = *new std::condition_variable;  // never destroyed
bool g_stop = false;      // g_mu
bool g_waiting = false;   // g_mu: sysmon sleeps until sysmon_wake
std::thread* g_thread = nullptr;
std::atomic<uint64_t> g_preempt_requests{0};
std::atomic<uint64_t> g_retakes{0};

// Steps 2 and 3. Returns the number of actions taken.
int retake(uint64_t now) {
  int n = 0;
  bool pending = false;
  for (int i = 0; i < sched_nprocs(); i++) {
    P* p = sched_p(i);
    PStatus s = p->status.load(std::memory_order_seq_cst);
    if (s == PStatus::kBlocking) {
      uint32_t t = p->blocktick.load(std::memory_order_relaxed);
      if (p->sysmon_blocktick != t) {  // a new blocking region: first sight
        p->sysmon_blocktick = t;
        p->sysmon_blockwhen = now;
        continue;
      }
      if (now - p->sysmon_blockwhen < kRetakeNs) continue;
      PStatus exp = PStatus::kBlocking;
      // The CAS races with the M's own sched_blocking_end: exactly one of them wins.
      if (p->status.compare_exchange_strong(exp, PStatus::kIdle, std::memory_order_acq_rel)) {
        g_retakes.fetch_add(1, std::memory_order_relaxed);
        p->nretaken.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        handoffp(p);
        n++;
      }
    } else if (s == PStatus::kRunning) {
      uint32_t t = p->schedtick.load(std::memory_order_relaxed);
      if (p->sysmon_schedtick != t) {
        p->sysmon_schedtick = t;
        p->sysmon_schedwhen = now;
      } else if (now - p->sysmon_schedwhen >= kPreemptNs &&
                 !p->preempt.load(std::memory_order_relaxed)) {
        p->preempt.store(true, std::memory_order_seq_cst);
        poll_set(kPollPreempt);
        g_preempt_requests.fetch_add(1, std::memory_order_relaxed);
        n++;
      }
      if (p->preempt.load(std::memory_order_relaxed)) pending = true;
    }
  }
  // No request outstanding: safepoints take their fast path again.
  if (pending || sched_nmnop() > 0) poll_set(kPollPreempt);
  else if (__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) & kPollPreempt)
    poll_clear(kPollPreempt);
  return n;
}

void sysmon_loop() {
  set_thread_name("tricolor-sysmon");
  uint64_t delay = kMinDelayNs;
  int idle = 0;
  for (;;) {
    if (idle == 0) delay = kMinDelayNs;
    else if (idle > 50) delay = std::min(delay * 2, kMaxDelayNs);
    uint64_t now = monotonic_ns();
    uint64_t sleep = delay;
    uint64_t nt = next_timer_ns();
    if (nt != UINT64_MAX) sleep = std::min(sleep, nt > now ? nt - now : 0);
    {
      std::unique_lock<std::mutex> l(g_mu);
      if (g_stop) return;
      if (sleep) g_cv.wait_for(l, std::chrono::nanoseconds(std::min<uint64_t>(sleep, kMaxParkNs)));
      // Nothing runs and nothing waits for a time: sleep until the scheduler wakes up.
      while (!g_stop && sched_all_idle() && next_timer_ns() == UINT64_MAX) {
        g_waiting = true;
        g_cv.wait(l);
      }
      g_waiting = false;
      if (g_stop) return;
    }
    now = monotonic_ns();
    int worked = 0;
    if (next_timer_ns() <= now) {
      run_timers(now);
      worked++;
    }
    worked += retake(now);
    idle = worked ? 0 : idle + 1;
  }
}

}  // namespace

void sysmon_start() {
  {
    std::lock_guard<std::mutex> l(g_mu);
    g_stop = false;
    g_waiting = false;
  }
  g_preempt_requests.store(0);
  g_retakes.store(0);
  g_thread = new std::thread(sysmon_loop);
}

void sysmon_stop() {
  if (!g_thread) return;
  {
    std::lock_guard<std::mutex> l(g_mu);
    g_stop = true;
  }
  g_cv.notify_all();
  g_thread->join();
  delete g_thread;
  g_thread = nullptr;
  poll_clear(kPollPreempt);
}

void sysmon_wake() {
  std::lock_guard<std::mutex> l(g_mu);
  if (g_waiting) g_cv.notify_all();
}

uint64_t sched_preempt_requests() { return g_preempt_requests.load(std::memory_order_relaxed); }
uint64_t sched_retakes() { return g_retakes.load(std::memory_order_relaxed); }

}  // namespace tricolor::internal
