// The collector: initialisation, the cycle, the controller and mark-worker threads,
// forced cycles, the scavenger, and the control API. See lib/gc/README.md for the
// overview; the cycle below follows its numbered steps.
#include "gc/collector.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "alloc/types.h"
#include "gc/checkmark.h"
#include "gc/mark.h"
#include "gc/stacks.h"
#include "gc/sweep.h"
#include "gc/testing.h"
#include "gc/thread.h"
#include "os/clock.h"
#include "os/cpu.h"
#include "trace/heaptrace.h"
#include "trace/log.h"
#include "tricolor/gc.h"
#include "tricolor_config.h"

namespace tricolor::internal {

namespace {

constexpr uint64_t kDefaultForcePeriodNs = 120ull * 1000000000ull;  // Go's forcegcperiod
constexpr uint64_t kDefaultScavengeDelayNs = 300ull * 1000000000ull;  // 5 minutes
constexpr int kTriggerWaitMs = 10;  // longest wait of an allocation for its cycle to start
constexpr int64_t kAssistSlice = 64 << 10;  // scan work an assist does between safepoints

std::atomic<bool> g_initialized{false};
std::atomic<bool> g_ever_initialized{false};  // a heap ran once: "after gc_shutdown" in messages
std::atomic<bool> g_sched_running{false};     // a gc_run is on (collector_sched_running)
gc_options g_opts;
int g_procs = 1;

// Pacer and cycle bookkeeping, guarded by g_mu.
std::mutex g_mu;
std::condition_variable& g_cv = *new std::condition_variable;  // leaked: waited on at exit — controller wake-ups and cycle completion
Pacer g_pacer;
bool g_request = false;             // a cycle is requested
CycleReason g_request_reason = CycleReason::kHeap;
bool g_request_user = false;        // a gc_collect waits: sweep in the foreground
bool g_request_user_sweeps = false; // ... from an attached thread, which sweeps it all
constinit thread_local bool tls_in_collect = false;  // inside collect_and_wait
uint64_t g_waiter_swept = 0;        // the last cycle such a thread has swept (its CPU counted)
uint64_t g_cycles_started = 0;
uint64_t g_cycles_done = 0;
// A cycle runs, from its numbering (claim_cycle_locked: on the controller, or on an
// allocating thread in start_cycle_from_allocation) to the end of mark_and_finish, its
// statistics and trace included: no other may start. Guarded by g_mu.
bool g_cycle_active = false;
// A cycle whose sweep termination an allocating thread ran, for the controller to mark
// and finish (start_cycle_from_allocation). Guarded by g_mu.
struct StartedCycle {
  uint32_t cycle = 0;
  CycleTimes ct;
};
bool g_handoff_pending = false;
StartedCycle g_handoff;
std::atomic<uint64_t> g_begun_by_alloc{0};  // tests: cycles begun on an allocating thread
uint64_t g_cycles_swept = 0;
// The sweep of the last cycle whose mark ended: what its sweep_done event reports. Set at
// mark termination; claimed (reported = true) by whoever first sees that sweep finished:
// the background sweeper at the end of its pass, the controller when gc_collect waits, or
// the next cycle's sweep termination. Guarded by g_mu.
struct SweepRecord {
  uint64_t cycle = 0;
  uint64_t start_ns = 0;            // end of mark termination (monotonic)
  uint64_t spans0 = 0, bytes0 = 0;  // sweep_stats() at mark termination
  uint64_t cpu_ns = 0;              // background sweeper and controller CPU so far
  bool reported = true;
  // The sweeper starts before the controller writes the cycle's end (its trace event, its
  // gctrace line: the class walk takes milliseconds on a big heap, and a sweep held back
  // that long made the mutators sweep more and the heap cross the next trigger sooner).
  // A sweep that finishes first waits here for cycle_end: done_ns is when it finished.
  bool end_traced = true;
  uint64_t done_ns = 0;
};
SweepRecord g_sweep;
std::atomic<bool> g_stop{false};  // exit or gc_shutdown: no cycle starts, waiters return
uint64_t g_last_cycle_end_ns = 0;
std::atomic<Phase> g_phase{Phase::kOff};
std::atomic<bool> g_user_cycle{false};  // mark workers run flat out
// Relaxed copies of the pacer's goal and expected scan work (publish_trigger): an assist
// computes its ratio from them and the heap as it is now (Go revises assistWorkPerByte on
// every heapLive update). A ratio the controller refreshed every 100 us went stale when the
// controller was descheduled, and the heap then overshot its goal on a loaded machine.
std::atomic<uint64_t> g_assist_goal{Pacer::kNoGoal};
std::atomic<uint64_t> g_assist_expected{0};
// Set by gc_free_os_memory: the next mark termination gives every thread's page cache
// back to the heap, so that the scavenge after the collection finds those pages too.
std::atomic<bool> g_flush_page_caches{false};
// Go's bgScanCredit: scan work done by the mark workers that assists may claim instead of
// scanning themselves. An assist that can neither claim credit nor find work parks until
// the workers make credit or the mark ends (Go's gcParkAssist), so a mutator cannot
// allocate past the goal faster than marking proceeds.
std::atomic<int64_t> g_bg_credit{0};
std::atomic<int> g_assists_parked{0};
std::mutex g_assist_mu;
std::condition_variable& g_assist_cv = *new std::condition_variable;  // leaked: waited on at exit
std::atomic<uint64_t> g_trigger{UINT64_MAX};  // copy of g_pacer.trigger for the fast check

// Call with g_mu held after the pacer changed.
void publish_trigger() {
  g_trigger.store(g_pacer.trigger, std::memory_order_relaxed);
  g_assist_goal.store(g_pacer.goal, std::memory_order_relaxed);
  g_assist_expected.store(g_pacer.expected_scan_work(), std::memory_order_relaxed);
}

// Heap-allocated: a program may exit without gc_shutdown, and a joinable std::thread
// destroyed at exit would terminate it.
std::thread* g_controller = nullptr;
std::vector<std::thread*>& g_workers = *new std::vector<std::thread*>;  // leaked: threads run until exit
std::mutex g_worker_mu;
// The mark workers leave (gc_shutdown), once the controller has: a cycle it still runs
// after g_stop (one an allocating thread started) needs them, since the stacks of threads
// in blocking regions, gc_shutdown's caller among them, are scanned by the workers. Workers
// that left at g_stop hung gc_shutdown. Guarded by g_worker_mu.
bool g_workers_stop = false;
std::condition_variable& g_worker_cv = *new std::condition_variable;  // leaked: waited on at exit — workers wait here for a mark phase
std::atomic<uint64_t> g_mark_start_ns{0};
std::atomic<uint64_t> g_worker_cpu_ns{0};
// Of the workers' marking, what ran beyond their share because a proc had no mutator to
// run (Go's idle mark workers): counted apart, in gctrace's idle field, and left out of
// gc_cpu_fraction as Go leaves idle mark time out of GCCPUFraction ("free"). This cycle's.
std::atomic<uint64_t> g_idle_cpu_ns{0};
std::atomic<uint64_t> g_assist_cpu_ns{0};

CollectorStats g_stats;
std::mutex g_stats_mu;
gc_oom_fn g_oom_handler = nullptr;
std::mutex g_oom_mu;

// The heap verifier after every mark termination: on in debug builds (NDEBUG unset, as
// TRICOLOR_ASSERT) and stress builds, off in release builds; TRICOLOR_VERIFY=0/1 overrides
// it at gc_init, set_verify_each_cycle after.
#if !defined(NDEBUG) || TRICOLOR_STRESS
constexpr bool kVerifyByDefault = true;
#else
constexpr bool kVerifyByDefault = false;
#endif
std::atomic<bool> g_verify_each{kVerifyByDefault};
// Test hook (testing.h): runs once at the next mark termination, world stopped.
std::atomic<void (*)(void*)> g_test_at_term{nullptr};
void* g_test_at_term_arg = nullptr;  // written before g_test_at_term (release), read after
std::atomic<bool> g_test_hold{false};
// test_hold_stress_collections: nests (each test scope adds one); stress_tick skips while
// it is not 0.
std::atomic<int> g_test_stress_holds{0};
uint64_t g_test_target = 0;
uint64_t g_roots_scanned_cycle = 0;  // g_mu
std::atomic<uint64_t> g_verify_failures{0};

// ---- Environment --------------------------------------------------------------------

bool parse_bytes(const char* s, size_t* out) {
  char* end = nullptr;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || v < 0 || !std::isfinite(v)) return false;
  std::string suf(end);
  double mul = 1;
  if (suf.empty() || suf == "B") mul = 1;
  else if (suf == "KiB" || suf == "K" || suf == "KB") mul = 1024.0;
  else if (suf == "MiB" || suf == "M" || suf == "MB") mul = 1024.0 * 1024;
  else if (suf == "GiB" || suf == "G" || suf == "GB") mul = 1024.0 * 1024 * 1024;
  else if (suf == "TiB" || suf == "T" || suf == "TB") mul = 1024.0 * 1024 * 1024 * 1024;
  else return false;
  double b = v * mul;
  if (b > 1.8e19) return false;
  if (v > 0 && b < 1) return false;  // "0.5": not a byte count, and 0 would mean no limit
  *out = static_cast<size_t>(b);
  return true;
}

bool parse_int(const char* s, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < lo || v > hi) return false;
  *out = v;
  return true;
}

void bad_env(const char* var, const char* value, const char* what) {
  log_error("%s=\"%s\" is not valid (%s); the default is used", var, value, what);
}

// ---- Cycle ---------------------------------------------------------------------------

uint64_t heap_live() { return alloc_counters().heap_live.load(std::memory_order_relaxed); }

// A finished sweep, as its sweep_done event reports it.
struct SweepReport {
  uint64_t cycle = 0, wall_ns = 0, cpu_ns = 0, spans = 0, bytes = 0;
};

// Call with g_mu held: adds sweeping CPU to the record of `cycle` and, if the caller saw
// that cycle's sweep finish at done_ns (0: not finished) and nobody reported it yet, claims
// it; the caller reports *out after releasing g_mu (report_sweep).
bool claim_sweep(uint64_t cycle, uint64_t cpu_ns, uint64_t done_ns, SweepReport* out) {
  if (g_sweep.cycle != cycle || g_sweep.reported) return false;
  g_sweep.cpu_ns += cpu_ns;
  if (!done_ns) return false;
  g_sweep.reported = true;
  out->cycle = cycle;
  out->wall_ns = done_ns > g_sweep.start_ns ? done_ns - g_sweep.start_ns : 0;
  out->cpu_ns = g_sweep.cpu_ns;
  // Relaxed: statistics; every sweeper of this cycle has filed its span (sweep_done).
  out->spans = sweep_stats().spans_swept.load(std::memory_order_relaxed) - g_sweep.spans0;
  out->bytes = sweep_stats().bytes_freed.load(std::memory_order_relaxed) - g_sweep.bytes0;
  return true;
}

void report_sweep(const SweepReport& r, const char* by) {
  trace_sweep_done(static_cast<uint32_t>(r.cycle), r.wall_ns, r.cpu_ns, r.spans, r.bytes, by);
}

void record_pause(CycleTimes& ct, int which, uint64_t ns, uint32_t cycle) {
  ct.pause_ns[which] += ns;
  g_stats.pause_total_ns.fetch_add(ns, std::memory_order_relaxed);
  uint64_t m = g_stats.pause_max_ns.load(std::memory_order_relaxed);
  while (ns > m && !g_stats.pause_max_ns.compare_exchange_weak(m, ns)) {
  }
  trace_pause(cycle, which == 0 ? "sweep_termination" : "mark_termination", ns);
}

// Mark workers: about 25% of the procs (Go: dedicated + fractional). Each worker runs at a
// utilisation u = 0.25 * procs / workers (<= 1), sleeping to keep its CPU share; during a
// cycle started by gc_collect they run flat out. Procs that no mutator uses are idle, and
// Go gives an idle P to an idle-priority mark worker that marks until there is other work
// (gcMarkWorkerIdleMode): here the workers run flat out while fewer attached threads run
// mutator code than there are procs (a thread parked in a blocking region, an idle
// scheduler thread, does not count).
//
// While the scheduler runs (gc_run), its P's do the 25% themselves: a fiber's thread marks
// at its span refills for its part of the mark's wall time (fractional_mark, Go's
// fractional worker, which runs on a P). The workers then mark only for P's left idle, so
// that mutators and collector together use `procs` CPUs, as under Go's GOMAXPROCS: with
// one P the worker thread used to add a quarter of a CPU beside it. If no P has marked for
// kFractionalStallNs (fibers that compute without allocating), the workers take the 25%
// again, or the mark would wait for them.
//
// The idle P's marking counts toward the 25% first, and the busy P's carry only what it
// leaves (fractional_goal): in Go an idle P runs the fractional worker before it runs the
// idle one, while a goroutine computing on its P is not interrupted until the scheduler
// runs. One fiber on two P's (an interpreter's main fiber) marked a quarter of its time at
// its refills while the other P's worker marked flat out beside it.
constexpr uint64_t kFractionalStallNs = 5'000'000;
std::atomic<uint64_t> g_frac_last_ns{0};   // when a P last marked (relaxed: a hint)
std::atomic<uint64_t> g_frac_total_ns{0};  // all of it since gc_init (tests)
// The share of its wall time each busy P marks (fractional_mark), set by the workers as
// they look at how many P's are idle; 0.25 until they have looked (set at mark start).
// Relaxed: a hint, read at refills.
std::atomic<double> g_frac_goal{kGoalUtilization};

// The CPU share a worker marks at now, and in *share the part of it that is the workers'
// 25% (the rest is idle marking: procs no attached thread runs on).
double worker_utilisation(double* share) {
  double workers = double(g_workers.size() ? g_workers.size() : 1);
  int procs = g_procs;
  if (g_sched_running.load(std::memory_order_relaxed)) {
    if (int n = sched_active_procs(); n > 0) procs = n;  // the P's of this gc_run
    double goal = kGoalUtilization * procs;                // in CPUs
    int running = running_threads_hint(procs);
    if (running < 0) {  // not known (the registry is busy): as before
      *share = 0;
      return 0;
    }
    double idle = double(procs - running);
    double covered = std::min(idle, goal);  // by the idle P's marking
    g_frac_goal.store(running > 0 ? (goal - covered) / running : 0, std::memory_order_relaxed);
    uint64_t now = monotonic_ns();
    uint64_t last = std::max(g_frac_last_ns.load(std::memory_order_relaxed),
                             g_mark_start_ns.load(std::memory_order_relaxed));
    bool stalled = covered < goal && now - last >= kFractionalStallNs;
    double mine = stalled ? goal : covered;  // the 25% the workers carry
    *share = std::min(mine / workers, 1.0);
    return std::min(std::max(idle, mine) / workers, 1.0);
  }
  double u = kGoalUtilization * procs / workers;
  *share = std::min(u, 1.0);
  int running = running_threads_hint(procs);
  if (running >= 0 && running < procs) u = std::max(u, double(procs - running) / workers);
  return std::min(u, 1.0);
}

void wake_assists() {
  { std::lock_guard<std::mutex> g(g_assist_mu); }
  g_assist_cv.notify_all();
}

// One slice of background marking (the workers, fractional_mark): scan work done, or -1 if
// the world is stopping. Dekker with try_finish_mark: raise busy, then look at the stop
// request again; a marker that saw no stop before the world stopped is waited for
// (INV-MARK-3). Short slices: the stop request is checked between them. The work is
// credit for the assists.
int64_t background_slice() {
  auto& ms = mark_state();
  ms.busy.fetch_add(1, std::memory_order_seq_cst);
  if (world_stopped()) {
    ms.busy.fetch_sub(1, std::memory_order_seq_cst);
    return -1;
  }
  GcWork w;
  int64_t n = drain(w, kAssistSlice);
  w.dispose();
  ms.busy.fetch_sub(1, std::memory_order_seq_cst);
  if (n > 0) {
    // Relaxed: credit is a budget; the assist's claim is a CAS on the same atomic.
    g_bg_credit.fetch_add(n, std::memory_order_relaxed);
    if (g_assists_parked.load(std::memory_order_seq_cst) > 0) wake_assists();
  }
  return n;
}

void mark_worker_loop() {
  set_thread_name("tricolor-mark");
  for (;;) {
    {
      std::unique_lock<std::mutex> g(g_worker_mu);
      g_worker_cv.wait(g, [] {
        return g_workers_stop || g_phase.load(std::memory_order_acquire) == Phase::kMark;
      });
      if (g_workers_stop) return;
    }
    uint64_t cpu0 = thread_cpu_ns();
    uint64_t mark_start = g_mark_start_ns.load(std::memory_order_acquire);
    uint64_t cpu_start = cpu0;
    uint64_t cpu_counted = cpu0;  // g_worker_cpu_ns has this thread's CPU up to here
    while (g_phase.load(std::memory_order_acquire) == Phase::kMark && !world_stopped()) {
      if (g_test_hold.load(std::memory_order_acquire)) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      // Flat out when the user waits for the cycle or a mutator is parked waiting for it.
      bool hurry = g_user_cycle.load(std::memory_order_relaxed) ||
                   g_assists_parked.load(std::memory_order_relaxed) > 0;
      double share = 1.0;
      double u = hurry ? 1.0 : worker_utilisation(&share);
      if (u <= 0) {  // the P's mark (fractional_mark): look again shortly
        std::unique_lock<std::mutex> g(g_worker_mu);
        g_worker_cv.wait_for(g, std::chrono::milliseconds(1));
        mark_start = monotonic_ns();  // the share counts from here
        cpu_start = cpu_counted = thread_cpu_ns();
        continue;
      }
      int64_t n = background_slice();
      // The marking CPU is counted slice by slice: counted once at the end of the loop,
      // which ends when the world stops, it came after the controller had read the sum at
      // mark termination, and gctrace and the pacer's utilisation (consMark) saw
      // almost none of the workers' marking.
      uint64_t cpu_now = thread_cpu_ns();
      uint64_t slice_cpu = cpu_now - cpu_counted;
      // The part beyond the share is idle marking (a flat-out worker for gc_collect or a
      // parked assist is not: somebody waits for it).
      uint64_t idle = u > share ? uint64_t(double(slice_cpu) * (u - share) / u) : 0;
      g_worker_cpu_ns.fetch_add(slice_cpu - idle, std::memory_order_relaxed);
      if (idle) g_idle_cpu_ns.fetch_add(idle, std::memory_order_relaxed);
      cpu_counted = cpu_now;
      if (n < 0) break;  // the world is stopping
      if (n == 0) {
        g_cv.notify_all();  // the controller may be waiting for termination
        std::unique_lock<std::mutex> g(g_worker_mu);
        g_worker_cv.wait_for(g, std::chrono::microseconds(200));
        continue;
      }
      if (u < 1.0) {
        uint64_t used = thread_cpu_ns() - cpu_start;
        uint64_t wall = monotonic_ns() - mark_start;
        double allowed = u * double(wall);
        if (double(used) > allowed) {
          uint64_t sleep_ns = uint64_t((double(used) - allowed) / u);
          std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<uint64_t>(sleep_ns, 2000000)));
        }
      }
    }
    // Wait until the phase leaves kMark before looking again.
    std::unique_lock<std::mutex> g(g_worker_mu);
    g_worker_cv.wait_for(g, std::chrono::milliseconds(1), [] {
      return g_workers_stop || g_phase.load(std::memory_order_acquire) != Phase::kMark;
    });
  }
}

// Ragged write-barrier flushes before a mark termination (run_cycle): how many per cycle,
// and how long one waits for the running threads to reach a safepoint (a thread that does
// not is flushed in the pause).
inline constexpr int kRaggedFlushes = 3;
std::atomic<int> g_pause_wbuf_entries{0};  // test_pause_wbuf_entries
inline constexpr uint64_t kRaggedFlushWaitNs = 500000;

// Step 1-2: sweep termination (world stopped), then the mark phase is on.
void start_mark(uint32_t cycle, CycleTimes& ct) {
  uint64_t sweep_cpu0 = thread_cpu_ns();
  finish_sweep();  // concurrent: normally done already by the background sweeper
  // Read before the pause: the thread's CPU clock is a system call, and a system call in
  // the pause lets the kernel hand this CPU to another runnable thread (a pause of 40-50 us
  // where the work took 3).
  uint64_t sweep_cpu = thread_cpu_ns() - sweep_cpu0;
  uint64_t t0 = monotonic_ns();
  ct.start_ns = t0;
  stop_the_world("sweep termination");
  // Sweeping finished above; the background sweeper may still be between two empty
  // passes, so confirm (this finds nothing to sweep, so it is short).
  for (int i = 0; !sweep_done(); i++) {
    TRICOLOR_CHECK(i < 1000000, "a cycle cannot finish the previous sweep");
    finish_sweep();
  }
  // The previous cycle's sweep is over: if no sweeper reported it yet, this thread does.
  // The claim takes g_mu after the pause: another thread may hold it while it waits for a
  // CPU. (With the claim and the CPU clock read here, GCBench's sweep terminations took
  // 20-60 us in one run in three, against 3-5 us otherwise.)
  uint64_t sweep_done_ns = monotonic_ns();
  auto& ms = mark_state();
  ms.bytes_marked.store(0, std::memory_order_relaxed);
  ms.scan_work.store(0, std::memory_order_relaxed);
  ms.bytes_allocated_black.store(0, std::memory_order_relaxed);
  ms.stack_bytes.store(0, std::memory_order_relaxed);
  ct.heap_start = heap_live();
  g_bg_credit.store(0, std::memory_order_relaxed);
  g_phase.store(Phase::kMark, std::memory_order_release);
  // The flag the inline barrier and allocator read; the restart of the world publishes
  // it to every thread before any runs mutator code again.
  __atomic_store_n(&tricolor_barrier_on, 1, __ATOMIC_SEQ_CST);
  stacks_begin_cycle(cycle);
  // The objects the allocation runs will hand out are allocated black; that includes the
  // tiny allocator's current block, a heap object referenced from the off-heap mcache
  // (Go's gcMarkTinyAllocs).
  for_each_thread_stopped([&](ThreadState* t) {
    t->black_bytes += t->cache.blacken_runs();
    t->assist_bytes.store(0, std::memory_order_relaxed);
  });
  g_frac_goal.store(kGoalUtilization, std::memory_order_relaxed);  // until the workers look
  g_mark_start_ns.store(monotonic_ns(), std::memory_order_release);
  uint64_t p = start_the_world() - t0;
  record_pause(ct, 0, p, cycle);
  SweepReport swept;
  bool report;
  {
    std::lock_guard<std::mutex> g(g_mu);
    report = claim_sweep(cycle - 1, sweep_cpu, sweep_done_ns, &swept);
  }
  if (report) report_sweep(swept, "sweep_termination");
  ct.mark_ns = monotonic_ns();
  g_worker_cv.notify_all();
}

// Step 4: with the world stopped, flush the write-barrier buffers and rescan the roots.
// If that found grey objects, or a marker still holds work, marking resumes (Go's
// gcMarkDone restart, issue 27993); otherwise mark termination proceeds. Returns true if
// the cycle's mark is over (the world is left stopped).
bool try_finish_mark(uint32_t cycle, CycleTimes& ct, uint64_t* t0) {
  *t0 = monotonic_ns();
  stop_the_world("mark termination");
  auto& ms = mark_state();
  ms.busy.fetch_add(1, std::memory_order_seq_cst);
  int entries = 0;
  for_each_thread_stopped([&entries](ThreadState* t) {
    entries += t->wbuf.n;
    flush_wbuf(t);
  });
  g_pause_wbuf_entries.store(entries, std::memory_order_relaxed);
  GcWork w;
  scan_roots(w);
  w.dispose();
  ms.busy.fetch_sub(1, std::memory_order_seq_cst);
  // Markers that raised busy before the stop finish their drain and put their work back;
  // only then is an empty queue proof that no grey object is left (INV-MARK-3). A marker
  // that does not finish within ~50 us (descheduled) makes this attempt give up instead.
  for (uint64_t t = monotonic_ns(); ms.busy.load(std::memory_order_seq_cst) != 0;) {
    uint64_t now = monotonic_ns();
    if (now - t > 50000) break;
    spin_or_yield(t, now);
  }
  // An overflow (INV-MARK-4), even one of the root scan above, leaves marked objects whose
  // referents may be white: marking resumes, and the controller rescans with the world
  // running (run_cycle), not in this pause, whose length would then grow with the heap.
  if (ms.busy.load(std::memory_order_seq_cst) != 0 || !ms.queue.empty() || stacks_unscanned() != 0 ||
      ms.overflowed.load(std::memory_order_seq_cst)) {
    record_pause(ct, 1, start_the_world() - *t0, cycle);
    ct.restarts++;
    g_worker_cv.notify_all();
    return false;
  }
  return true;
}

// Step 5: mark termination, world stopped. Barrier off, mcaches flushed, sweepgen += 2,
// the pacer commits the next goal.
void finish_mark(uint32_t cycle, CycleTimes& ct, uint64_t t0) {
  ct.mark_term_ns = t0;
  g_phase.store(Phase::kMarkTermination, std::memory_order_release);
  __atomic_store_n(&tricolor_barrier_on, 0, __ATOMIC_SEQ_CST);
  ct.stacks_scanned = stacks_live();
  stacks_end_cycle();
  auto& ms = mark_state();
  // Acquire: pairs with test_at_mark_termination's release store (the argument).
  if (auto fn = g_test_at_term.exchange(nullptr, std::memory_order_acquire)) fn(g_test_at_term_arg);
  if (g_verify_each.load(std::memory_order_relaxed)) {
    uint64_t bad = verify_heap(true);
    g_verify_failures.fetch_add(bad, std::memory_order_relaxed);
  }
  if (checkmark_enabled()) checkmark_heap();  // re-mark from the roots; aborts on a miss
  run_retention_probe();                      // tests: what keeps an object (checkmark.h)
  ct.heap_end = heap_live();
  bool flush_pages = g_flush_page_caches.exchange(false, std::memory_order_relaxed);
  for_each_thread_stopped([&ms, flush_pages](ThreadState* t) {
    // The runs' slots not handed out were counted black (taken during the mark, or marked
    // at its start): they are free again.
    uint64_t unused = t->cache.release_all(/*give_back=*/true);
    if (flush_pages) t->cache.release_pages();
    t->black_bytes -= std::min(unused, t->black_bytes);
    t->assist_bytes.store(0, std::memory_order_relaxed);
    t->cache.black_lo = t->cache.black_hi = 0;  // its slots are no longer black
    ms.bytes_allocated_black.fetch_add(t->black_bytes, std::memory_order_relaxed);
    t->black_bytes = 0;
  });
  // The marked heap, as Go's heapMarked: objects found by tracing plus those allocated black
  // during the mark (Go's gcmarknewobject adds them to bytesMarked). They are in the heap
  // when the cycle ends; leaving them out sized the next goal on too small a heap, and a
  // fast allocator then ran about twice as many cycles as Go on the same program.
  uint64_t marked = ms.bytes_marked.load(std::memory_order_relaxed) +
                    ms.bytes_allocated_black.load(std::memory_order_relaxed);
  uint64_t scan_work = ms.scan_work.load(std::memory_order_relaxed);
  ct.heap_marked = marked;
  auto& h = heap();
  {
    // Emptied spans stay in their classes for a cycle (sweep.h) unless the program asked
    // for this cycle, or the heap is within an eighth of the memory limit.
    uint64_t limit = h.limit_bytes.load(std::memory_order_relaxed);
    uint64_t inuse = h.counters.pages_inuse.load(std::memory_order_relaxed) * kPageSize;
    set_sweep_keeps_emptied(ct.reason == CycleReason::kHeap && inuse < limit - limit / 8);
  }
  h.sweepgen.store(h.sweepgen.load(std::memory_order_relaxed) + 2, std::memory_order_seq_cst);
  for (int sc = 0; sc < kNumSpanClasses; sc++) h.central(static_cast<SpanClass>(sc)).begin_sweep_cycle();
  alloc_counters().heap_live.store(marked, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> g(g_mu);
    uint64_t mark_wall = t0 - ct.mark_ns;
    uint64_t cpu = g_worker_cpu_ns.load() + g_idle_cpu_ns.load() + g_assist_cpu_ns.load();
    double u = mark_wall ? double(cpu) / double(mark_wall * uint64_t(g_procs)) : kGoalUtilization;
    uint64_t allocated = ct.heap_end > ct.heap_start ? ct.heap_end - ct.heap_start : 0;
    if (ct.reason != CycleReason::kUser) g_pacer.end_cycle(allocated, scan_work, u);
    // The stacks' bytes are in scan_work too (the runway's work), as Go's heapScanWork and
    // stackScanWork both feed its runway.
    g_pacer.commit(marked, ms.stack_bytes.load(std::memory_order_relaxed), roots_bytes(), scan_work);
    ct.goal = g_pacer.goal;
    ct.trigger = g_pacer.trigger;
    publish_trigger();
    h.limit_bytes.store(g_pacer.memory_limit ? g_pacer.memory_limit : UINT64_MAX,
                        std::memory_order_relaxed);
    // This cycle's sweep starts when the world does; start_ns is set in run_cycle.
    g_sweep = SweepRecord{};
    g_sweep.cycle = cycle;
    g_sweep.spans0 = sweep_stats().spans_swept.load(std::memory_order_relaxed);
    g_sweep.bytes0 = sweep_stats().bytes_freed.load(std::memory_order_relaxed);
    g_sweep.reported = false;
    g_sweep.end_traced = false;
  }
  g_phase.store(Phase::kOff, std::memory_order_release);
  uint64_t end = start_the_world();
  wake_assists();
  record_pause(ct, 1, end - t0, cycle);
  ct.end_ns = end;
}

// Numbers a new cycle and marks it active; 0 if one is active already (or the collector
// stops). g_mu held.
uint32_t claim_cycle_locked() {
  if (g_cycle_active || g_stop) return 0;
  g_cycle_active = true;
  return static_cast<uint32_t>(++g_cycles_started);
}

// Steps 1-2 of a claimed cycle: its counters, its trace event, sweep termination (start_mark).
void begin_cycle(uint32_t cycle, CycleReason reason, bool user_waits, CycleTimes& ct) {
  ct.reason = reason;
  g_user_cycle.store(user_waits, std::memory_order_relaxed);
  g_worker_cpu_ns.store(0);
  g_idle_cpu_ns.store(0);
  g_assist_cpu_ns.store(0);
  {
    std::lock_guard<std::mutex> g(g_mu);
    trace_cycle_begin(cycle, reason, heap_live(), g_pacer.trigger, g_pacer.goal);
  }
  start_mark(cycle, ct);
}

// Steps 3-6 of a cycle whose mark began (begin_cycle): on the controller.
// waiter_sweeps: gc_collect's caller is attached and sweeps the whole heap itself once the
// mark is over (collect_and_wait): the background sweeper is not woken, and the controller
// waits for that sweep rather than taking part.
void mark_and_finish(uint32_t cycle, CycleTimes& ct, bool user_waits, bool waiter_sweeps) {
  // Step 3: concurrent mark. The controller scans the roots and the parked stacks; running
  // threads scan their own stacks at their next safepoint; workers and assists drain.
  auto& ms = mark_state();
  uint64_t controller_cpu0 = thread_cpu_ns();
  {
    ms.busy.fetch_add(1, std::memory_order_seq_cst);
    GcWork w;
    scan_roots(w);
    w.dispose();
    ms.busy.fetch_sub(1, std::memory_order_seq_cst);
    g_cv.notify_all();  // test_start_cycle waits for the roots to be scanned
  }
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_roots_scanned_cycle = cycle;
  }
  g_cv.notify_all();
  uint64_t warn_at = monotonic_ns() + kStopWarnNs;
  int ragged_flushes = 0;
  for (;;) {
    if (g_test_hold.load(std::memory_order_acquire)) {
      std::unique_lock<std::mutex> g(g_mu);
      g_cv.wait_for(g, std::chrono::microseconds(200));
      continue;
    }
    ms.busy.fetch_add(1, std::memory_order_seq_cst);
    GcWork w;
    scan_parked_stacks(w);
    if (user_waits) drain(w, 1 << 20);  // nobody else needs the CPU: help
    w.dispose();
    ms.busy.fetch_sub(1, std::memory_order_seq_cst);
    if (stacks_unscanned() == 0 && ms.queue.empty() && ms.busy.load(std::memory_order_seq_cst) == 0) {
      // The grey set ran dry, but a marker dropped grey objects at the buffer bound: rescan
      // the marked heap concurrently (INV-MARK-4, bdwgc's mark-stack overflow) and go on
      // marking what it greys. Each rescan that overflows again marked new objects, so
      // the rescans end. busy was 0 when read above, so every overflow is visible here.
      if (ms.overflowed.load(std::memory_order_seq_cst)) {
        ms.busy.fetch_add(1, std::memory_order_seq_cst);
        GcWork w;
        rescan_overflowed(w);
        if (user_waits) drain(w, 1 << 20);
        w.dispose();
        ms.busy.fetch_sub(1, std::memory_order_seq_cst);
        g_worker_cv.notify_all();
        continue;
      }
      // Go's gcMarkDone: every running thread flushes its write-barrier buffer first (a
      // ragged barrier, the world running), so the mark termination pause does not grey
      // up to 512 pointers per thread. If that greyed anything, it is marked concurrently
      // before the world stops (at most kRaggedFlushes times: a mutator that keeps
      // overwriting white pointers must not hold the cycle off).
      if (ragged_flushes < kRaggedFlushes) {
        ragged_flushes++;
        flush_write_buffers_ragged(kRaggedFlushWaitNs);
        if (!ms.queue.empty() || ms.busy.load(std::memory_order_seq_cst) != 0) {
          g_worker_cv.notify_all();
          continue;
        }
      }
      uint64_t t0;
      if (try_finish_mark(cycle, ct, &t0)) {
        ct.idle_cpu_ns = g_idle_cpu_ns.load();
        ct.assist_cpu_ns = g_assist_cpu_ns.load();
        finish_mark(cycle, ct, t0);
        // After the pause: reading the thread's CPU clock is a system call (start_mark).
        ct.worker_cpu_ns = g_worker_cpu_ns.load() + (thread_cpu_ns() - controller_cpu0);
        break;
      }
      continue;
    }
    if (monotonic_ns() > warn_at && stacks_unscanned() > 0) {
      warn_at = monotonic_ns() + 10 * kStopWarnNs;
      auto labels = running_unscanned_labels(4);
      log_warn("marking waits for %lld stack(s) to reach a safepoint (first: %s); long "
               "loops must call gc_safepoint()", static_cast<long long>(stacks_unscanned()),
               labels.empty() ? "?" : labels[0]);
    }
    // Markers that run dry notify g_cv, so this wait is a safety net and the look at newly
    // parked stacks: at 100 us it woke the controller 10,000 times a second through every
    // mark, each time taking a CPU from a mutator (2-3% of a run in kernel switches).
    std::unique_lock<std::mutex> g(g_mu);
    g_cv.wait_for(g, std::chrono::microseconds(user_waits ? 20 : 1000));
  }

  // Step 6: concurrent sweep, started before the statistics and the tracing below.
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_cycles_done = cycle;  // before the wake: the sweeper's pass is for this cycle
    g_last_cycle_end_ns = monotonic_ns();
    g_sweep.start_ns = ct.end_ns;  // no sweeper reports this cycle before the wake
  }
  if (waiter_sweeps)
    g_cv.notify_all();  // gc_collect's caller sweeps (collect_and_wait)
  else
    wake_background_sweeper();

  // The grey set's memory does not stay at its peak: every buffer is empty now (no marker
  // runs in kOff), and all but a reserve for the next cycle are freed.
  ms.queue.trim(kWorkbufReserve);

  // Statistics, tracing.
  uint64_t pause = ct.pause_ns[0] + ct.pause_ns[1];
  uint64_t cpu = ct.worker_cpu_ns + ct.idle_cpu_ns + ct.assist_cpu_ns + pause * uint64_t(g_procs);
  g_stats.gc_cpu_ns.fetch_add(cpu, std::memory_order_relaxed);
  g_stats.assist_ns.fetch_add(ct.assist_cpu_ns, std::memory_order_relaxed);
  g_stats.idle_mark_ns.fetch_add(ct.idle_cpu_ns, std::memory_order_relaxed);
  g_stats.mark_ns.fetch_add(ct.mark_term_ns - ct.mark_ns, std::memory_order_relaxed);
  g_stats.mark_worker_ns.fetch_add(ct.worker_cpu_ns, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> g(g_stats_mu);
    uint32_t n = g_stats.num_gc.load(std::memory_order_relaxed);
    g_stats.pause_ns[n % 256] = pause;
    g_stats.pause_end_ns[n % 256] = unix_ns();
    g_stats.last_gc_unix_ns.store(unix_ns(), std::memory_order_relaxed);
    if (ct.reason == CycleReason::kUser || ct.reason == CycleReason::kPeriodic)
      g_stats.num_forced_gc.fetch_add(1, std::memory_order_relaxed);
    g_stats.num_gc.store(n + 1, std::memory_order_release);
  }
  gc_stats s;
  gc_read_stats(&s);
  trace_cycle_end(cycle, ct, s.gc_cpu_fraction);
  if (g_opts.gctrace) gctrace_print(cycle, ct, s.gc_cpu_fraction, g_procs);

  // The cycle's end is written: a sweep that finished meanwhile is reported now, after it
  // (the dump's order: cycle_end, then sweep_done), and gc_collect may return.
  {
    SweepReport swept;
    bool report = false;
    {
      std::lock_guard<std::mutex> g(g_mu);
      g_sweep.end_traced = true;
      if (g_sweep.cycle == cycle && g_sweep.done_ns) {
        report = claim_sweep(cycle, 0, g_sweep.done_ns, &swept);
        g_cycles_swept = std::max<uint64_t>(g_cycles_swept, cycle);
      }
    }
    if (report) report_sweep(swept, "background");
  }
  // gc_collect waits for the sweep: the controller sweeps too, or waits for the caller's.
  if (user_waits) {
    uint64_t cpu0 = thread_cpu_ns();
    if (waiter_sweeps) {
      // Until the caller has filed its sweep; or, once the sweep is done anyway, a couple of
      // milliseconds more at most: a fiber whose P another fiber holds in a collector wait
      // (a trigger waiting for the next cycle, which waits for this one to end) does not
      // run again before that wait times out (kTriggerWaitMs), but the other fiber swept
      // what was left before it waited (sweep_leftovers). And kTriggerWaitMs at most in
      // all: a caller held up anywhere else (its thread off the CPU) leaves the rest of the
      // sweep to this thread (finish_sweep below) rather than the cycle waiting for it.
      std::unique_lock<std::mutex> g(g_mu);
      uint64_t give_up = monotonic_ns() + uint64_t(kTriggerWaitMs) * 1000000;
      for (int after_done = 0; g_waiter_swept < cycle && !g_stop && monotonic_ns() < give_up;) {
        if (sweep_done() && ++after_done > 2) break;
        g_cv.wait_for(g, std::chrono::milliseconds(1));
      }
    }
    finish_sweep();  // whatever is left (nothing, after the caller's sweep)
    SweepReport swept;
    bool report;
    {
      std::lock_guard<std::mutex> g(g_mu);
      report = claim_sweep(cycle, thread_cpu_ns() - cpu0, monotonic_ns(), &swept);
      g_cycles_swept = std::max<uint64_t>(g_cycles_swept, cycle);
    }
    if (report) report_sweep(swept, "foreground");
  }
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_cycle_active = false;
  }
  g_cv.notify_all();
}

// A whole cycle on the controller, claimed by it (claim_cycle_locked): a requested one
// (gc_collect, a trigger an allocating thread could not start itself, the periodic one).
void run_cycle(uint32_t cycle, CycleReason reason, bool user_waits, bool waiter_sweeps) {
  CycleTimes ct;
  begin_cycle(cycle, reason, user_waits, ct);
  mark_and_finish(cycle, ct, user_waits, waiter_sweeps);
}

// The two periods the test hooks change while the controller runs: relaxed atomics (a new
// value is picked up at the controller's next look; g_cv wakes it).
uint64_t scavenge_delay() {
  uint64_t ns = __atomic_load_n(&g_opts.scavenge_delay_ns, __ATOMIC_RELAXED);
  return ns ? ns : kDefaultScavengeDelayNs;
}
uint64_t force_period() {
  uint64_t ns = __atomic_load_n(&g_opts.force_gc_period_ns, __ATOMIC_RELAXED);
  return ns ? ns : kDefaultForcePeriodNs;
}

// The background scavenger's goal for the heap's resident pages (Go's gcPaceScavenger,
// mgcscavenge.go): 10% over the heap goal, and at most 95% of the memory limit; none with
// GOGC off and no limit. g_mu held.
inline constexpr uint64_t kScavengeTickBytes = 64 << 20;      // released per tick, at most
inline constexpr uint64_t kScavengeBusyTickNs = 100000000;    // next tick while over the goal
inline constexpr uint64_t kScavengeSlackBytes = 1 << 20;      // over by less: left alone
uint64_t scavenge_retain_goal_locked() {
  uint64_t goal = UINT64_MAX;
  if (g_pacer.goal != Pacer::kNoGoal) goal = g_pacer.goal + g_pacer.goal / 10;
  if (g_pacer.memory_limit) goal = std::min<uint64_t>(goal, g_pacer.memory_limit / 100 * 95);
  return goal;
}

// The controller thread: runs requested cycles, forces one when none ran for the period
// (Go's forcegc), and paces the scavenger.
void controller_loop() {
  set_thread_name("tricolor-gc");
  uint64_t next_scavenge = monotonic_ns() + std::min<uint64_t>(scavenge_delay() / 4, 1000000000);
  for (;;) {
    CycleReason reason;
    bool user;
    bool user_sweeps = false;
    uint32_t cycle;
    StartedCycle started;
    {
      std::unique_lock<std::mutex> g(g_mu);
      for (;;) {
        if (g_handoff_pending) break;
        // An allocating thread is in its sweep termination: its cycle comes here next
        // (also at shutdown: the cycle it started must end).
        if (g_cycle_active) {
          g_cv.wait(g);
          continue;
        }
        if (g_stop) return;
        if (g_request) break;
        uint64_t now = monotonic_ns();
        if (now - g_last_cycle_end_ns >= force_period()) {
          g_request = true;
          g_request_reason = CycleReason::kPeriodic;
          break;
        }
        if (now >= next_scavenge) break;
        uint64_t wake = std::min(g_last_cycle_end_ns + force_period(), next_scavenge);
        g_cv.wait_for(g, std::chrono::nanoseconds(wake - now));
      }
      if (g_handoff_pending) {
        started = g_handoff;
        g_handoff_pending = false;
        g.unlock();
        mark_and_finish(started.cycle, started.ct, /*user_waits=*/false, /*waiter_sweeps=*/false);
        continue;
      }
      reason = g_request_reason;
      user = g_request_user;
      user_sweeps = g_request_user_sweeps;
      bool run = g_request;
      g_request = false;
      g_request_user = false;
      g_request_user_sweeps = false;
      if (!run) reason = CycleReason::kHeap;  // scavenger tick only
      if (!run) user = user_sweeps = false;
      if (!run) {
        uint64_t retain = scavenge_retain_goal_locked();
        g.unlock();
        uint64_t now = monotonic_ns();
        next_scavenge = now + std::min<uint64_t>(scavenge_delay() / 4, 1000000000);
        size_t released = heap().scavenge(now, scavenge_delay());
        if (released) trace_scavenge(released, "age");
        // Go's background scavenger: the heap's resident pages are kept within 10% over the
        // heap goal (and 95% of the memory limit). A program whose live heap shrank (a
        // phase of 1 GB live, then 10 MB) otherwise kept its peak until the pages' age
        // passed the scavenge delay. A tick releases at most kScavengeTickBytes and comes
        // back sooner while more is over the goal, about 10% of a CPU at most.
        auto& h = heap();
        uint64_t resident = h.counters.heap_sys.load(std::memory_order_relaxed) -
                            std::min(h.counters.heap_sys.load(std::memory_order_relaxed),
                                     h.counters.heap_released.load(std::memory_order_relaxed));
        if (resident > retain + kScavengeSlackBytes) {
          uint64_t over = resident - retain;
          size_t got = h.scavenge_some(std::min<uint64_t>(over, kScavengeTickBytes), now, 0);
          if (got) trace_scavenge(got, "goal");
          if (got && over > got) next_scavenge = now + kScavengeBusyTickNs;
        }
        continue;
      }
      cycle = claim_cycle_locked();  // no cycle is active, the collector runs: never 0
    }
    run_cycle(cycle, reason, user, user_sweeps);
  }
}

// At exit the heap stays as it is (like Go's): no new cycle starts, and the exiting thread
// counts as stopped so a cycle in flight never waits for it.
void on_process_exit() {
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_stop = true;
  }
  g_cv.notify_all();
  // A collector wait, not a region of the program's own: exit handlers that run after
  // this one (registered before gc_init) may still allocate, as before.
  collector_wait_begin();
}

void request_cycle(CycleReason reason) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (g_request) return;
    g_request = true;
    g_request_reason = reason;
  }
  g_cv.notify_all();
}

// Go's gcStart runs on the allocating goroutine that crosses the trigger: it first finishes
// the previous cycle's sweep itself, and it allocates nothing more until the mark phase is
// on. The controller runs tricolor's cycles, so the allocating thread sweeps, asks for the
// cycle and waits for it to start, inside a blocking region (the stop of the world does not
// wait for it). Without this the heap outruns the trigger by as much as a busy mutator
// allocates while the controller waits for a CPU (tens of MiB on a loaded 2-core machine).
//
// Go's gcStart also stops the world on that goroutine, and so does this thread when no cycle
// is active or requested: it runs the sweep termination itself (begin_cycle) and hands the
// cycle to the controller for the mark. A controller woken first to stop the world takes a
// CPU from a running thread, often the very thread the stop then waits for: in a demo run
// (64 fibers on two P's), 14 of the 47 sweep terminations the controller ran took over
// 20 us (up to 158), none of the 47 that allocating threads ran (3-5 us).
[[gnu::noinline, gnu::cold]] void start_cycle_from_allocation() {
  sweep_leftovers();
  // Inside the wait before the world stops or the controller wakes: the controller, woken
  // by a request, often runs on this CPU at once (the waker's), and its stop of the world
  // then waited 10-30 us for this thread, which it kept off the CPU, to reach the wait.
  collector_wait_begin();
  uint64_t started;
  uint32_t cycle = 0;
  bool requested = false;
  {
    std::unique_lock<std::mutex> g(g_mu);
    // The last cycle may still be ending on the controller (its mark is over: the world's
    // restart, statistics, trace, gctrace): this thread waits for that, then starts the
    // next one itself. A cycle still starting (its roots not scanned yet) or marking is
    // not waited for here.
    g_cv.wait_for(g, std::chrono::milliseconds(kTriggerWaitMs), [] {
      bool ending = g_cycle_active && g_roots_scanned_cycle >= g_cycles_started &&
                    g_phase.load(std::memory_order_relaxed) != Phase::kMark;
      return g_stop || !ending;
    });
    started = g_cycles_started;
    if (g_request) requested = true;  // the controller runs it: wait for it below
    else cycle = claim_cycle_locked();  // 0: another one is starting, or the collector stops
  }
  if (cycle != 0) {
    CycleTimes ct;
    g_begun_by_alloc.fetch_add(1, std::memory_order_relaxed);
    begin_cycle(cycle, CycleReason::kHeap, /*user_waits=*/false, ct);
    {
      std::lock_guard<std::mutex> g(g_mu);
      g_handoff.cycle = cycle;
      g_handoff.ct = ct;
      g_handoff_pending = true;
    }
    g_cv.notify_all();
    // The mark is on, but its grey set is empty until the controller has scanned the
    // roots, and an assist finds no work meanwhile: wait for that, as when the controller
    // starts the cycle.
    std::unique_lock<std::mutex> g(g_mu);
    g_cv.wait_for(g, std::chrono::milliseconds(kTriggerWaitMs), [&] {
      return g_stop || g_roots_scanned_cycle >= cycle;
    });
    g.unlock();
    collector_wait_end();
    return;
  }
  // Another thread's cycle is starting (claimed, its roots not scanned yet), or a
  // requested one will: wait for its mark as above; a marking cycle, or one that ended
  // over the wait above, is not waited for. Going on at once while a cycle started or
  // ended let the heap run far past the trigger (a 2-CPU machine with other work on it:
  // GOGC 50 ran a quarter of its cycles, each starting at twice the goal).
  {
    uint64_t target = requested ? started + 1 : started;
    std::unique_lock<std::mutex> g(g_mu);
    g_cv.wait_for(g, std::chrono::milliseconds(kTriggerWaitMs), [&] {
      return g_stop || g_roots_scanned_cycle >= target;
    });
  }
  collector_wait_end();
}

// Claims up to `want` units of the workers' scan credit; returns what it got.
int64_t claim_credit(int64_t want) {
  int64_t have = g_bg_credit.load(std::memory_order_relaxed);
  for (;;) {
    if (have <= 0) return 0;
    int64_t take = std::min(have, want);
    // Relaxed: the credit orders nothing; it is a counter shared by CAS.
    if (g_bg_credit.compare_exchange_weak(have, have - take, std::memory_order_relaxed)) return take;
  }
}

// Pays `debt` units of scan work: credit first, then marking, then parking until the
// workers make credit or the mark ends (Go's gcAssistAlloc and gcParkAssist). The park is
// a blocking region, so this thread's stack can be scanned and the world stopped meanwhile.
void assist(int64_t debt) {
  auto& ms = mark_state();
  uint64_t c0 = thread_cpu_ns();
  debt -= claim_credit(debt);
  while (debt > 0 && g_phase.load(std::memory_order_acquire) == Phase::kMark) {
    // In slices of kAssistSlice units, with a safepoint between them: a stop of the world
    // waits for one slice at most, never for a whole debt (which can be the heap).
    ms.busy.fetch_add(1, std::memory_order_seq_cst);
    if (world_stopped()) {  // Dekker with try_finish_mark, as the workers do
      ms.busy.fetch_sub(1, std::memory_order_seq_cst);
      gc_safepoint();
      continue;
    }
    GcWork w;
    int64_t done = drain(w, std::min<int64_t>(debt, kAssistSlice));
    w.dispose();
    ms.busy.fetch_sub(1, std::memory_order_seq_cst);
    debt -= done;
    if (debt <= 0) break;
    if (done > 0) {
      gc_safepoint();
      continue;
    }
    debt -= claim_credit(debt);
    if (debt <= 0 || g_test_hold.load(std::memory_order_acquire)) break;
    g_cv.notify_all();  // the controller may be waiting to terminate the mark
    g_assists_parked.fetch_add(1, std::memory_order_seq_cst);
    collector_wait_begin();
    {
      std::unique_lock<std::mutex> g(g_assist_mu);
      g_assist_cv.wait_for(g, std::chrono::microseconds(500), [] {
        return g_bg_credit.load(std::memory_order_relaxed) > 0 ||
               g_phase.load(std::memory_order_acquire) != Phase::kMark;
      });
    }
    collector_wait_end();
    g_assists_parked.fetch_sub(1, std::memory_order_seq_cst);
    debt -= claim_credit(debt);
  }
  g_assist_cpu_ns.fetch_add(thread_cpu_ns() - c0, std::memory_order_relaxed);
}

// Go's fractional mark worker, on the allocating fiber's thread while the scheduler runs:
// at a span refill, a thread holding a P that has marked for less than its part of the
// mark's wall time so far (g_frac_goal: a quarter, less what idle P's carry) marks until it
// has caught up (at most kFractionalMaxNs at a
// time, in slices with a safepoint between them). Its work is background work: it adds
// to the workers' credit and CPU time, not to the assist's.
constexpr uint64_t kFractionalMinNs = 20'000;
constexpr uint64_t kFractionalMaxNs = 1'000'000;
void fractional_mark(ThreadState* t) {
  uint64_t start = g_mark_start_ns.load(std::memory_order_acquire);
  if (t->frac_mark_start != start) {
    t->frac_mark_start = start;
    t->frac_ns = 0;
  }
  uint64_t now = monotonic_ns();
  double goal = g_frac_goal.load(std::memory_order_relaxed) * double(now - start);
  if (double(t->frac_ns + kFractionalMinNs) > goal) return;
  uint64_t budget = std::min<uint64_t>(uint64_t(goal) - t->frac_ns, kFractionalMaxNs);
  auto& ms = mark_state();
  uint64_t c0 = thread_cpu_ns();
  uint64_t t0 = now;
  while (g_phase.load(std::memory_order_acquire) == Phase::kMark) {
    int64_t n = background_slice();
    now = monotonic_ns();
    if (n <= 0 || now - t0 >= budget) break;
    gc_safepoint();
  }
  t->frac_ns += now - t0;
  g_frac_total_ns.fetch_add(now - t0, std::memory_order_relaxed);
  g_frac_last_ns.store(now, std::memory_order_relaxed);
  g_worker_cpu_ns.fetch_add(thread_cpu_ns() - c0, std::memory_order_relaxed);
  if (ms.queue.empty()) g_cv.notify_all();  // the controller may be waiting for termination
}

}  // namespace

// ---- Shared state accessors ----------------------------------------------------------------

bool collector_initialized() { return g_initialized.load(std::memory_order_acquire); }
bool ever_initialized() { return g_ever_initialized.load(std::memory_order_relaxed); }
void collector_sched_running(bool on) { g_sched_running.store(on); }
bool sched_procs_busy() {
  if (!g_sched_running.load(std::memory_order_relaxed)) return false;
  int procs = sched_active_procs();
  if (procs <= 0) return false;
  int running = running_threads_hint(procs);
  return running >= procs;  // -1 (the registry is busy): not known, so not busy
}
Phase gc_phase() { return g_phase.load(std::memory_order_acquire); }
CollectorStats& collector_stats() { return g_stats; }
int configured_procs() { return g_procs; }
size_t configured_fiber_stack_size() { return g_opts.fiber_stack_size ? g_opts.fiber_stack_size : 256 << 10; }
void set_verify_each_cycle(bool on) { g_verify_each.store(on); }
bool verify_each_cycle() { return g_verify_each.load(std::memory_order_relaxed); }
uint64_t verify_failures() { return g_verify_failures.load(); }
Pacer pacer_snapshot() {
  std::lock_guard<std::mutex> g(g_mu);
  return g_pacer;
}
const char* reason_name(CycleReason r) {
  switch (r) {
    case CycleReason::kHeap: return "heap";
    case CycleReason::kUser: return "user";
    case CycleReason::kPeriodic: return "periodic";
    case CycleReason::kOom: return "oom";
    case CycleReason::kStress: return "stress";
  }
  return "?";
}

uint64_t cycles_marked() {
  std::lock_guard<std::mutex> g(g_mu);
  return g_cycles_done;
}

void on_sweep_done(uint64_t cycle, uint64_t cpu_ns) {
  SweepReport swept;
  bool report;
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (g_sweep.cycle == cycle && !g_sweep.end_traced) {
      // Finished before the controller wrote the cycle's end: it reports (run_cycle).
      claim_sweep(cycle, cpu_ns, 0, &swept);
      g_sweep.done_ns = monotonic_ns();
      return;
    }
    g_cycles_swept = std::max<uint64_t>(g_cycles_swept, cycle);
    report = claim_sweep(cycle, cpu_ns, monotonic_ns(), &swept);
    // A pass overtaken by a later mark termination swept some of that cycle's spans too.
    if (!report && g_sweep.cycle > cycle) claim_sweep(g_sweep.cycle, cpu_ns, 0, &swept);
  }
  g_cv.notify_all();  // gc_collect waits for it
  if (report) report_sweep(swept, "background");
}

// ---- Hooks of the allocator ----------------------------------------------------------------

void alloc_slow_hook(ThreadState* t, size_t bytes) {
  gc_safepoint();
  if (g_phase.load(std::memory_order_relaxed) == Phase::kMark) {
    if (g_sched_running.load(std::memory_order_relaxed) && sched_current_p() >= 0)
      fractional_mark(t);
    // Mark assist: pay scan work in proportion to the allocation (Go's gcAssistAlloc).
    int64_t owed = t->assist_bytes.load(std::memory_order_relaxed) + static_cast<int64_t>(bytes);
    t->assist_bytes.store(owed, std::memory_order_relaxed);
    if (owed >= (64 << 10)) {
      double ratio = Pacer::assist_ratio_for(
          g_assist_goal.load(std::memory_order_relaxed),
          g_assist_expected.load(std::memory_order_relaxed), heap_live(),
          mark_state().scan_work.load(std::memory_order_relaxed));
      int64_t debt = static_cast<int64_t>(double(owed) * ratio);
      t->assist_bytes.store(0, std::memory_order_relaxed);
      if (debt > 0) assist(debt);
    }
    return;
  }
  // Relaxed: the trigger is a threshold; a stale value delays a cycle by one span at most.
  // The thread's own charges not yet added to heap_live count (mcache::pending); other
  // threads' may be short by kCounterFlushBytes each.
  uint64_t live = heap_live() + uint64_t(t->cache.pending.live) + bytes;
  bool trigger = live >= g_trigger.load(std::memory_order_relaxed) &&
                 g_phase.load(std::memory_order_relaxed) == Phase::kOff;
  if (trigger) start_cycle_from_allocation();
}

void collect_for_oom() { gc_collect(); }

void* out_of_memory(size_t request) {
  uint64_t limit = pacer_snapshot().memory_limit;
  trace_oom(request, limit);
  gc_oom_fn fn;
  {
    std::lock_guard<std::mutex> g(g_oom_mu);
    fn = g_oom_handler;
  }
  if (!fn) {
    log_error("out of memory: cannot allocate %zu bytes (memory limit %llu bytes, %llu bytes "
              "in use after a full collection); aborting (see gc_set_oom_handler)",
              request, static_cast<unsigned long long>(limit),
              static_cast<unsigned long long>(heap().counters.pages_inuse.load() * kPageSize));
    abort();
  }
  // An allocation the handler makes that fails calls it again, nested (docs/misuse.md): a
  // guard flag would stay set after a handler that leaves by longjmp, as C programs do,
  // and every later failure on the thread would return NULL without the handler.
  fn(request);
  return nullptr;
}

void sample_allocation(ThreadState* t, mspan* s, uintptr_t p, const gc_type* type, size_t size) {
  uint64_t weight = uint64_t(t->cache.sample_bytes);  // >= kSampleBytes here
  t->cache.sample_bytes = 0;
  if (!heaptrace_enabled()) return;
  // gc_alloc(size, NULL) passes the conservative type ("<conservative>"); the noscan and
  // tiny paths pass no type.
  trace_alloc_sample(s, p, type ? type->name : "<untyped>", size, weight);
}

// ---- Test hooks (gc/testing.h) --------------------------------------------------------------

void test_request_background_cycle() { request_cycle(CycleReason::kHeap); }
uint64_t test_cycles_swept() {
  std::lock_guard<std::mutex> g(g_mu);
  return g_cycles_swept;
}
uint64_t test_cycles_begun_by_allocation() {
  return g_begun_by_alloc.load(std::memory_order_relaxed);
}
double test_fractional_goal() { return g_frac_goal.load(std::memory_order_relaxed); }
uint64_t test_fractional_mark_ns() { return g_frac_total_ns.load(std::memory_order_relaxed); }
int test_pause_wbuf_entries() { return g_pause_wbuf_entries.load(std::memory_order_relaxed); }

void test_set_hold(bool on) {
  g_test_hold.store(on, std::memory_order_release);
  g_cv.notify_all();
}
bool test_hold_on() { return g_test_hold.load(std::memory_order_acquire); }

void test_hold_stress_collections(bool on) {
  // Release: pairs with stress_tick's acquire load (a test setting).
  g_test_stress_holds.fetch_add(on ? 1 : -1, std::memory_order_release);
}

void test_start_cycle() {
  uint64_t target;
  {
    std::lock_guard<std::mutex> g(g_mu);
    target = g_cycles_started + 1;
    g_test_target = target;
    g_request = true;
    g_request_user = true;
    g_request_reason = CycleReason::kUser;
  }
  // In the blocking region before the controller is woken (see start_cycle_from_allocation).
  bool attached = current_thread() != nullptr;
  if (attached) gc_blocking_begin();
  g_cv.notify_all();
  {
    std::unique_lock<std::mutex> g(g_mu);
    g_cv.wait(g, [&] { return g_roots_scanned_cycle >= target; });
  }
  if (attached) gc_blocking_end();
}

void test_drain_all() {
  auto& ms = mark_state();
  ms.busy.fetch_add(1, std::memory_order_seq_cst);
  GcWork w;
  drain(w, -1);
  w.dispose();
  ms.busy.fetch_sub(1, std::memory_order_seq_cst);
}

void test_scan_parked_stacks() {
  auto& ms = mark_state();
  ms.busy.fetch_add(1, std::memory_order_seq_cst);
  GcWork w;
  scan_parked_stacks(w);
  w.dispose();
  ms.busy.fetch_sub(1, std::memory_order_seq_cst);
}

void test_shade(const void* p) {
  auto& ms = mark_state();
  ms.busy.fetch_add(1, std::memory_order_seq_cst);
  GcWork w;
  grey_pointer(reinterpret_cast<uintptr_t>(p), w);
  w.dispose();
  ms.busy.fetch_sub(1, std::memory_order_seq_cst);
}

void test_wait_cycle_done() {
  bool attached = current_thread() != nullptr;
  if (attached) gc_blocking_begin();
  {
    std::unique_lock<std::mutex> g(g_mu);
    g_cv.wait(g, [&] { return g_cycles_swept >= g_test_target; });
  }
  if (attached) gc_blocking_end();
}

void test_at_mark_termination(void (*fn)(void*), void* arg) {
  g_test_at_term_arg = arg;
  g_test_at_term.store(fn, std::memory_order_release);
}

void test_set_mark(const void* p, bool on) {
  ObjRef r;
  if (!find_object(reinterpret_cast<uintptr_t>(p), &r)) return;
  uint64_t bit = uint64_t{1} << (r.idx % 64);
  // Relaxed: the world is stopped (the caller runs at mark termination).
  if (on) __atomic_fetch_or(&r.span->mark_bits[r.idx / 64], bit, __ATOMIC_RELAXED);
  else __atomic_fetch_and(&r.span->mark_bits[r.idx / 64], ~bit, __ATOMIC_RELAXED);
}

bool test_is_marked(const void* p) {
  ObjRef r;
  return find_object(reinterpret_cast<uintptr_t>(p), &r) && r.span->mark_bit(r.idx);
}

void set_force_gc_period(uint64_t ns) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    __atomic_store_n(&g_opts.force_gc_period_ns, ns ? ns : kDefaultForcePeriodNs, __ATOMIC_RELAXED);
  }
  g_cv.notify_all();
}

void set_scavenge_delay(uint64_t ns) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    __atomic_store_n(&g_opts.scavenge_delay_ns, ns ? ns : kDefaultScavengeDelayNs, __ATOMIC_RELAXED);
  }
  g_cv.notify_all();
}

// GC stress mode (meson -Dstress=true): a full collection (gc_collect: mark, then sweep)
// at every Nth allocation and at every Mth safepoint poll, counted over all threads:
//   N = TRICOLOR_STRESS_N            default 1000 (gc_alloc, gc_alloc_noscan, ...)
//   M = TRICOLOR_STRESS_SAFEPOINT_N  default 100; 1: every safepoint (every poll takes the
//                                    slow path in these builds, kPollStress)
// One at a time: a tick that comes while a stress collection runs (another thread's, or
// the poll that ends the collection's own blocking region) is skipped, so with M = 1 a
// collection starts at every safepoint where none is already running.
#if TRICOLOR_STRESS
namespace {
std::atomic<uint64_t> g_stress_allocs{0};
std::atomic<uint64_t> g_stress_polls{0};
std::atomic<bool> g_stress_running{false};

uint64_t stress_period(const char* name, uint64_t fallback) {
  const char* e = getenv(name);
  long v = 0;
  if (e && !parse_int(e, 1, 1L << 30, &v)) bad_env(name, e, "a count from 1");
  return e && v > 0 ? uint64_t(v) : fallback;
}
uint64_t stress_alloc_period() {
  static const uint64_t n = stress_period("TRICOLOR_STRESS_N", 1000);
  return n;
}
uint64_t stress_safepoint_period() {
  static const uint64_t n = stress_period("TRICOLOR_STRESS_SAFEPOINT_N", 100);
  return n;
}

void stress_tick(std::atomic<uint64_t>& n, uint64_t every) {
  // Not inside a gc_collect of this thread (its blocking region's end polls): that one's
  // cycle waits for this thread's sweep, and a collection here would wait for the next.
  if (tls_in_collect) return;
  // Nor while a test holds the mark (test_set_hold): the cycle cannot end, and the
  // collection would wait for it (a test that allocates during the hold hung so when the
  // count fell due inside it).
  if (g_test_hold.load(std::memory_order_acquire)) return;
  // Nor while a test counts the cycles it runs itself (test_hold_stress_collections).
  if (g_test_stress_holds.load(std::memory_order_acquire) != 0) return;
  // Relaxed: a counter; which thread's tick collects does not matter.
  if (n.fetch_add(1, std::memory_order_relaxed) % every != every - 1) return;
  bool idle = false;
  if (!g_stress_running.compare_exchange_strong(idle, true)) return;
  gc_collect();
  g_stress_running.store(false);
}
}  // namespace
#endif

void stress_safepoint(ThreadState* t) {
  (void)t;
#if TRICOLOR_STRESS
  stress_tick(g_stress_polls, stress_safepoint_period());
#endif
}

void stress_alloc() {
#if TRICOLOR_STRESS
  stress_tick(g_stress_allocs, stress_alloc_period());
#endif
}

}  // namespace tricolor::internal

using namespace tricolor::internal;

namespace {

// The bounds gc_init holds a caller's options to. Out of bounds is a programming error that
// would otherwise start INT_MAX mark workers or map fiber stacks of 2^64 bytes: gc_init
// refuses it with a message naming the field, and starts nothing.
constexpr int kMaxProcs = 1024;                           // as TRICOLOR_PROCS
constexpr size_t kMaxFiberStack = size_t{1} << 30;        // Go's maximum stack, 1 GiB

bool options_valid(const gc_options& o) {
  if (o.procs < 0 || o.procs > kMaxProcs) {
    log_error("gc_init: gc_options.procs = %d is out of range (0: hardware threads, or 1 to "
              "%d); returns -1", o.procs, kMaxProcs);
    return false;
  }
  if (o.fiber_stack_size > kMaxFiberStack) {
    log_error("gc_init: gc_options.fiber_stack_size = %zu is out of range (0: 256 KiB, at most "
              "%zu; below 16 KiB is rounded up); returns -1", o.fiber_stack_size, kMaxFiberStack);
    return false;
  }
  return true;
}

}  // namespace

extern "C" {

void gc_options_default(gc_options* o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->gc_percent = 100;
  o->memory_limit = 0;
  o->procs = 0;
  o->gctrace = 0;
  o->heap_trace = nullptr;
  o->force_gc_period_ns = kDefaultForcePeriodNs;
  o->scavenge_delay_ns = kDefaultScavengeDelayNs;
  o->fiber_stack_size = 256 << 10;
  if (const char* v = getenv("TRICOLOR_GOGC")) {
    long n;
    if (!strcmp(v, "off")) o->gc_percent = -1;
    else if (parse_int(v, -1, 1000000, &n)) o->gc_percent = static_cast<int>(n);
    else bad_env("TRICOLOR_GOGC", v, "a percentage or 'off'");
  }
  if (const char* v = getenv("TRICOLOR_MEMLIMIT")) {
    size_t b;
    if (parse_bytes(v, &b)) o->memory_limit = b;
    else bad_env("TRICOLOR_MEMLIMIT", v, "bytes, with an optional B/KiB/MiB/GiB/TiB suffix; "
                                          "K/KB, M/MB, G/GB, T/TB are the same powers of 1024");
  }
  if (const char* v = getenv("TRICOLOR_PROCS")) {
    long n;
    if (parse_int(v, 1, 1024, &n)) o->procs = static_cast<int>(n);
    else bad_env("TRICOLOR_PROCS", v, "a number of processors from 1 to 1024");
  }
  if (const char* v = getenv("TRICOLOR_GCTRACE")) {
    long n;
    if (parse_int(v, 0, 1, &n)) o->gctrace = static_cast<int>(n);
    else bad_env("TRICOLOR_GCTRACE", v, "0 or 1");
  }
  if (const char* v = getenv("TRICOLOR_HEAPTRACE")) {
    if (*v) o->heap_trace = v;
    else bad_env("TRICOLOR_HEAPTRACE", v, "a file path");
  }
}

int gc_init(const gc_options* o) {
  if (g_initialized.load()) {
    log_error("gc_init called twice without gc_shutdown; the heap is already running");
    return -1;
  }
  if (o && !options_valid(*o)) return -1;
  if (o) g_opts = *o;
  else gc_options_default(&g_opts);
  if (!g_opts.force_gc_period_ns) g_opts.force_gc_period_ns = kDefaultForcePeriodNs;
  if (!g_opts.scavenge_delay_ns) g_opts.scavenge_delay_ns = kDefaultScavengeDelayNs;
  if (!g_opts.fiber_stack_size) g_opts.fiber_stack_size = 256 << 10;
  long hw = sysconf(_SC_NPROCESSORS_ONLN);
  g_procs = g_opts.procs > 0 ? g_opts.procs : static_cast<int>(hw > 0 ? hw : 1);
  heap().init();
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_pacer = Pacer();
    g_pacer.gc_percent = g_opts.gc_percent;
    g_pacer.memory_limit = g_opts.memory_limit;
    g_pacer.recompute();
    publish_trigger();
    g_request = false;
    g_stop = false;
    {
      std::lock_guard<std::mutex> w(g_worker_mu);
      g_workers_stop = false;
    }
    g_cycles_started = g_cycles_done = g_cycles_swept = g_waiter_swept = 0;
    g_request_user_sweeps = false;
    g_cycle_active = g_handoff_pending = false;
    g_last_cycle_end_ns = monotonic_ns();
  }
  heap().limit_bytes.store(g_opts.memory_limit ? g_opts.memory_limit : UINT64_MAX);
  g_stats.reset();
  alloc_counters().reset();
  g_stats.start_ns = monotonic_ns();
  if (g_opts.heap_trace)
    heaptrace_open(g_opts.heap_trace, g_procs, g_opts.gc_percent, g_opts.memory_limit);
  {
    bool verify = kVerifyByDefault;
    long v;
    if (const char* e = getenv("TRICOLOR_VERIFY")) {
      if (parse_int(e, 0, 1, &v)) verify = v != 0;
      else bad_env("TRICOLOR_VERIFY", e, "0 or 1");
    }
    g_verify_each.store(verify, std::memory_order_relaxed);
  }
  g_initialized.store(true, std::memory_order_release);
  g_ever_initialized.store(true);
#if TRICOLOR_STRESS
  poll_set(kPollStress);  // every safepoint poll takes the slow path (stress_safepoint)
#endif
  start_background_sweeper();
  size_t nworkers = std::max<size_t>(1, static_cast<size_t>(std::lround(kGoalUtilization * g_procs)));
  for (size_t i = 0; i < nworkers; i++) g_workers.push_back(new std::thread(mark_worker_loop));
  g_controller = new std::thread(controller_loop);
  static bool atexit_done = [] { return atexit(on_process_exit) == 0; }();
  (void)atexit_done;
  return gc_thread_attach();
}

void gc_shutdown(void) {
  if (!g_initialized.load()) {
    log_error("gc_shutdown called %s", g_ever_initialized ? "twice (the heap is already shut down)"
                                                           : "before gc_init");
    return;
  }
  if (g_sched_running.load()) {
    log_error("gc_shutdown called while gc_run is running (its fibers hold heap objects); "
              "ignored: call it after gc_run returns");
    return;
  }
  // A cycle may be stopping the world meanwhile: it holds the thread registry's lock and
  // waits for this thread, and the controller finishes that cycle before it ends. The
  // shutdown waits for both inside a blocking region (with a cycle forced every few
  // microseconds it hung, taking the lock, within a few rounds).
  bool attached = current_thread() != nullptr;
  if (attached) gc_blocking_begin();
  // Their records would be freed under them: the next allocation of such a thread bumped
  // a run of the released heap, its gc_blocking_end read freed memory.
  if (int n = other_attached_threads(); n > 0) {
    if (attached) gc_blocking_end();
    log_error("gc_shutdown called while %d other thread(s) are attached (they may hold heap "
              "objects); ignored: detach them first", n);
    return;
  }
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_stop = true;
  }
  g_cv.notify_all();
  if (g_controller) {
    g_controller->join();
    delete g_controller;
    g_controller = nullptr;
  }
  {
    std::lock_guard<std::mutex> g(g_worker_mu);
    g_workers_stop = true;
  }
  g_worker_cv.notify_all();
  for (auto* w : g_workers) {
    w->join();
    delete w;
  }
  g_workers.clear();
  stop_background_sweeper();
  if (attached) gc_blocking_end();  // no cycle runs any more
  heaptrace_close();  // reads the statistics for its `end` event: g_mu must be free
  detach_all_for_shutdown();
  heap().destroy();
  mark_state().queue.free_all();
  g_initialized.store(false, std::memory_order_release);
}

namespace tricolor::internal {
namespace {

// bdwgc's GC_clear_stack, for gc_collect: the frames gc_collect builds lie where the
// caller's earlier calls had theirs, and a slot they never write still holds what those
// calls left there. When the caller parks in gc_collect its stack is scanned from there,
// so a heap address left by a call that returned (a list the caller built and dropped)
// would keep its object through the very collection that was asked to free it. Zeroes
// 4 KiB below the caller's frame first, if the stack (a fiber's may be near its end) has
// room for them.
constexpr size_t kClearBytes = 4096;
[[gnu::noinline]] void clear_stack_below() {
  char buf[kClearBytes];
  memset(buf, 0, sizeof buf);
  asm volatile("" : : "r"(buf) : "memory");  // the stores are kept: buf escapes
}
void clear_stack_if_room() {
  Stack* st = current_stack();
  if (!st) return;  // not attached: this stack is not scanned
  auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (here > st->lo && here - st->lo > 2 * kClearBytes) clear_stack_below();
}

[[gnu::noinline]] void collect_and_wait() {
  struct InCollect {  // stress_tick: no collection of this thread's own inside this one
    bool was = tls_in_collect;
    InCollect() { tls_in_collect = true; }
    ~InCollect() { tls_in_collect = was; }
  } in_collect;
  uint64_t target;
  bool attached = current_thread() != nullptr;
  // A caller inside a blocking region of its own counts as stopped throughout: it must
  // not sweep (into its page cache, which a stop of the world may flush meanwhile), and
  // the background sweeper does the sweep instead.
  bool sweeps = attached && !current_thread()->in_user_region();
  {
    std::lock_guard<std::mutex> g(g_mu);
    target = g_cycles_started + 1;
    g_request = true;
    g_request_user = true;
    g_request_user_sweeps |= sweeps;
    g_request_reason = CycleReason::kUser;
  }
  // In the blocking region before the controller is woken (see start_cycle_from_allocation).
  if (attached) gc_blocking_begin();
  g_cv.notify_all();
  if (sweeps) {
    // Go's runtime.GC: the caller sweeps once the mark is over, here the whole heap (the
    // controller waits for it and the background sweeper is not woken). The spans it
    // empties go back to its own page cache (mheap::free_span), and the span structs,
    // lists and page maps the sweep writes stay in its CPU's caches, where the next
    // allocations read them: swept on the collector's threads, each span a thread took
    // after gc_collect moved a few cache lines from another CPU (the median round of an
    // allocation benchmark took twice its fastest).
    bool stopping;
    {
      std::unique_lock<std::mutex> g(g_mu);
      g_cv.wait(g, [&] { return g_cycles_done >= target || g_stop; });
      stopping = g_stop;  // exit or shutdown: the heap is left as it is
    }
    if (stopping) {
      gc_blocking_end();
      return;
    }
    gc_blocking_end();
    // In batches, a fiber yielding its P between them when asked to (Go's runtime.GC yields
    // after each span). Not a full safepoint: its other work includes, in stress builds, a
    // collection of its own, which would wait for the next cycle while this one waits for
    // this sweep (the stress torture hung so). No stop of the world comes meanwhile: the
    // cycle is still active, so no other can start.
    uint64_t cpu0 = thread_cpu_ns();
    for (int sc = 0; sc < kNumSpanClasses; sc++)
      while (heap().central(static_cast<SpanClass>(sc)).sweep_batch(mcentral::kSweepBatch) != 0)
        if (__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) & kPollPreempt) sched_safepoint();
    uint64_t cpu = thread_cpu_ns() - cpu0;
    gc_blocking_begin();
    {
      // The sweep's CPU time goes into the cycle's sweep record before the controller,
      // which waits for this, reports it (mark_and_finish).
      std::lock_guard<std::mutex> g(g_mu);
      SweepReport unused;
      claim_sweep(target, cpu, 0, &unused);
      g_waiter_swept = std::max(g_waiter_swept, target);
    }
    g_cv.notify_all();
  }
  {
    std::unique_lock<std::mutex> g(g_mu);
    g_cv.wait(g, [&] { return g_cycles_swept >= target || g_stop; });
  }
  if (attached) gc_blocking_end();
}

}  // namespace
}  // namespace tricolor::internal

void gc_collect(void) {
  if (!g_initialized.load(std::memory_order_acquire)) {
    log_error("gc_collect called %s", g_ever_initialized ? "after gc_shutdown" : "before gc_init");
    return;
  }
  tricolor::internal::clear_stack_if_room();
  tricolor::internal::collect_and_wait();
}

void gc_free_os_memory(void) {
  if (!g_initialized.load()) {
    log_error("gc_free_os_memory called %s", g_ever_initialized ? "after gc_shutdown" : "before gc_init");
    return;
  }
  tricolor::internal::g_flush_page_caches.store(true, std::memory_order_relaxed);
  gc_collect();
  size_t released = heap().scavenge(monotonic_ns(), 0);
  trace_scavenge(released, "free_os_memory");
}

int gc_set_percent(int pct) {
  int old;
  bool trigger;
  {
    std::lock_guard<std::mutex> g(g_mu);
    old = g_pacer.gc_percent;
    if (!g_initialized.load()) {
      // gc_init would overwrite it from its options: say so rather than drop it silently.
      log_error("gc_set_percent(%d) called %s; ignored (gc_options.gc_percent sets it for "
                "gc_init)", pct, g_ever_initialized ? "after gc_shutdown" : "before gc_init");
      return old;
    }
    g_pacer.gc_percent = pct < 0 ? -1 : pct;
    g_opts.gc_percent = g_pacer.gc_percent;
    g_pacer.recompute();
    publish_trigger();
    trigger = g_initialized.load() && g_pacer.should_trigger(alloc_counters().heap_live.load());
  }
  if (trigger) request_cycle(CycleReason::kHeap);
  return old;
}

size_t gc_set_memory_limit(size_t bytes) {
  size_t old;
  {
    std::lock_guard<std::mutex> g(g_mu);
    old = g_pacer.memory_limit;
    if (!g_initialized.load()) {
      log_error("gc_set_memory_limit(%zu) called %s; ignored (gc_options.memory_limit sets it "
                "for gc_init)", bytes, g_ever_initialized ? "after gc_shutdown" : "before gc_init");
      return old;
    }
    g_pacer.memory_limit = bytes;
    g_opts.memory_limit = bytes;
    g_pacer.recompute();
    publish_trigger();
  }
  heap().limit_bytes.store(bytes ? bytes : UINT64_MAX);
  return old;
}

gc_oom_fn gc_set_oom_handler(gc_oom_fn fn) {
  std::lock_guard<std::mutex> g(g_oom_mu);
  gc_oom_fn old = g_oom_handler;
  g_oom_handler = fn;
  return old;
}

}  // extern "C"
