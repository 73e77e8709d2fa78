// The scheduler: G/M/P, run queues, spawning, switching, parking, the blocking hand-off and
// the fiber C API. See README.md in this folder for the overview (the numbered steps below
// refer to it) and the invariants INV-SCHED-*.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "gc/collector.h"
#include "gc/stacks.h"
#include "gc/thread.h"
#include "os/clock.h"
#include "os/cpu.h"
#include "os/stack.h"
#include "sched/context.h"
#include "sched/sched.h"
#include "trace/log.h"
#include "tricolor/fiber.h"

extern "C" uint32_t tricolor_poll_request;

namespace tricolor::internal {

namespace {

using PostFn = void (*)(M* m, Coro* prev, void* arg);

struct Sched {
  std::mutex lock;                    // the scheduler lock
  GlobalRunq runq;                    // lock (size: atomic)
  P* pidle = nullptr;                 // lock
  std::atomic<int> npidle{0};         // written under lock, read anywhere
  M* midle = nullptr;                 // lock
  std::atomic<int> nmspinning{0};     // M's looking for work (Go's sched.nmspinning)
  std::atomic<int64_t> nmnop{0};      // M's running a fiber without a P (pinned)
  std::vector<P*> allp;               // fixed while a run is on
  int nprocs = 0;
  std::vector<M*> allm;               // lock
  std::atomic<int64_t> ngoroutines{0};  // fibers spawned and not yet dead
  std::atomic<bool> done{false};      // every fiber is dead: the run is over
  G* gfree = nullptr;                 // lock
  std::vector<G*> slabs;              // lock
  std::atomic<uint64_t> next_id{0};   // fiber ids (relaxed: unique is all we need)
  size_t stack_size = 0;
  // Timers of gc_sleep: a min-heap on G::wake_ns.
  std::mutex timer_mu;
  std::vector<G*> timers;             // timer_mu
  std::atomic<uint64_t> next_timer{UINT64_MAX};
};
Sched& S = *new Sched();  // never destroyed: threads may still run at exit

std::atomic<bool> g_running{false};
int g_procs_override = 0;
std::vector<SchedPStats> g_last_stats;
// S.nprocs for the collector's threads (sched_active_procs): 0 outside gc_run.
std::atomic<int> g_active_procs{0};
int g_last_threads = 0;

// Initial-exec TLS: an %fs-relative access instead of a __tls_get_addr call per switch (as
// mimalloc's own thread-locals; the static TLS block has room for a library loaded with
// the program or dlopen'ed by it).
constinit thread_local M* tls_m __attribute__((tls_model("initial-exec"))) = nullptr;
constinit thread_local uint32_t tls_rand __attribute__((tls_model("initial-exec"))) = 0;

// The M running on this thread. Out of line and opaque on purpose: a fiber may resume on
// another thread, so no caller may keep a thread-local address across a switch
// (INV-SCHED-4); every read after a switch calls this again.
[[gnu::noinline]] M* current_m() {
  asm volatile("" ::: "memory");
  return tls_m;
}

uint32_t fastrand() {
  uint32_t x = tls_rand;
  if (x == 0) x = static_cast<uint32_t>(monotonic_ns()) | 1;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  tls_rand = x;
  return x;
}


// ---- Run queues (runq.h) ------------------------------------------------------------------

// Global queue, lock held.
void globrunqput(G* g) {
  g->schedlink = nullptr;
  if (S.runq.tail) S.runq.tail->schedlink = g;
  else S.runq.head = g;
  S.runq.tail = g;
  S.runq.size.fetch_add(1, std::memory_order_seq_cst);
}

void globrunqputbatch(G* head, G* tail, int n) {
  tail->schedlink = nullptr;
  if (S.runq.tail) S.runq.tail->schedlink = head;
  else S.runq.head = head;
  S.runq.tail = tail;
  S.runq.size.fetch_add(n, std::memory_order_seq_cst);
}

// Moves half of p's ring and g to the global queue (Go's runqputslow). false if a stealer
// took from the ring meanwhile (the caller retries the fast path).
bool runqputslow(P* p, G* g, uint32_t h, uint32_t t) {
  constexpr uint32_t n = kRunqSize / 2;
  TRICOLOR_ASSERT(t - h == kRunqSize);
  (void)t;
  G* batch[n + 1];
  for (uint32_t i = 0; i < n; i++)
    batch[i] = p->runq.slots[(h + i) % kRunqSize].load(std::memory_order_relaxed);
  // acq_rel: commits the take against stealers (INV-RUNQ-1).
  if (!p->runq.head.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return false;
  batch[n] = g;
  for (uint32_t i = 0; i < n; i++) batch[i]->schedlink = batch[i + 1];
  std::lock_guard<std::mutex> l(S.lock);
  globrunqputbatch(batch[0], batch[n], n + 1);
  return true;
}

// Owner of p only. next: g goes to runnext and the previous runnext to the tail (a fiber
// just made ready runs next, Go's rule for new and woken fibers).
void runqput(P* p, G* g, bool next) {
  if (next) {
    // acq_rel: a stealer that CASes runnext away sees g's fields.
    g = p->runq.runnext.exchange(g, std::memory_order_acq_rel);
    if (!g) return;
  }
  for (;;) {
    // acquire: the slots stealers took are read before being reused.
    uint32_t h = p->runq.head.load(std::memory_order_acquire);
    uint32_t t = p->runq.tail.load(std::memory_order_relaxed);  // relaxed: only we store it
    if (t - h < kRunqSize) {
      p->runq.slots[t % kRunqSize].store(g, std::memory_order_relaxed);
      // release: the slot (and g's fields) before the new tail.
      p->runq.tail.store(t + 1, std::memory_order_release);
      return;
    }
    if (runqputslow(p, g, h, t)) return;
  }
}

// Owner of p only.
G* runqget(P* p) {
  G* next = p->runq.runnext.load(std::memory_order_relaxed);
  if (next && p->runq.runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire))
    return next;
  for (;;) {
    uint32_t h = p->runq.head.load(std::memory_order_acquire);
    uint32_t t = p->runq.tail.load(std::memory_order_relaxed);
    if (t == h) return nullptr;
    G* g = p->runq.slots[h % kRunqSize].load(std::memory_order_relaxed);
    if (p->runq.head.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel)) return g;
  }
}

// Takes half of pp's queue into p's ring at position `at` (Go's runqgrab); the runnext slot
// too when steal_next and the ring is empty.
uint32_t runqgrab(P* pp, P* p, uint32_t at, bool steal_next) {
  for (;;) {
    uint32_t h = pp->runq.head.load(std::memory_order_acquire);
    uint32_t t = pp->runq.tail.load(std::memory_order_acquire);
    uint32_t n = t - h;
    n = n - n / 2;
    if (n == 0) {
      if (!steal_next) return 0;
      G* next = pp->runq.runnext.load(std::memory_order_acquire);
      if (!next || !pp->runq.runnext.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel))
        return 0;
      p->runq.slots[at % kRunqSize].store(next, std::memory_order_relaxed);
      return 1;
    }
    if (n > kRunqSize / 2) continue;  // h and t read at different times; retry
    for (uint32_t i = 0; i < n; i++)
      p->runq.slots[(at + i) % kRunqSize].store(
          pp->runq.slots[(h + i) % kRunqSize].load(std::memory_order_relaxed),
          std::memory_order_relaxed);
    if (pp->runq.head.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return n;
  }
}

// Owner of p: steals half of pp's queue, returns one fiber to run (the rest is queued on p).
G* runqsteal(P* p, P* pp, bool steal_next) {
  uint32_t t = p->runq.tail.load(std::memory_order_relaxed);
  uint32_t n = runqgrab(pp, p, t, steal_next);
  if (n == 0) return nullptr;
  n--;
  G* g = p->runq.slots[(t + n) % kRunqSize].load(std::memory_order_relaxed);
  if (n == 0) return g;
  p->runq.tail.store(t + n, std::memory_order_release);
  return g;
}

// Lock held; p's local ring must be empty (the callers just failed runqget), so the batch
// fits. max > 0 bounds the number taken.
G* globrunqget(P* p, int max) {
  int64_t sz = S.runq.size.load(std::memory_order_relaxed);
  if (sz == 0) return nullptr;
  int64_t n = std::min<int64_t>(sz, sz / S.nprocs + 1);
  if (max > 0 && n > max) n = max;
  uint32_t room = kRunqSize - p->runq.size();
  if (n > int64_t(room / 2) + 1) n = room / 2 + 1;
  S.runq.size.fetch_sub(n, std::memory_order_seq_cst);
  G* g = S.runq.head;
  S.runq.head = g->schedlink;
  if (!S.runq.head) S.runq.tail = nullptr;
  for (n--; n > 0; n--) {
    G* g1 = S.runq.head;
    S.runq.head = g1->schedlink;
    if (!S.runq.head) S.runq.tail = nullptr;
    runqput(p, g1, false);
  }
  return g;
}

// ---- P's and M's --------------------------------------------------------------------------

// Lock held.
void pidleput(P* p) {
  p->status.store(PStatus::kIdle, std::memory_order_seq_cst);
  p->m = nullptr;
  p->link = S.pidle;
  S.pidle = p;
  S.npidle.fetch_add(1, std::memory_order_seq_cst);
}

// Lock held.
P* pidleget() {
  P* p = S.pidle;
  if (!p) return nullptr;
  S.pidle = p->link;
  if (S.npidle.fetch_sub(1, std::memory_order_seq_cst) == S.nprocs) sysmon_wake();
  return p;
}

void acquirep(M* m, P* p) {
  m->p = p;
  p->m = m;
  p->status.store(PStatus::kRunning, std::memory_order_seq_cst);
}

void mstart(M* m);

std::atomic<int> g_fail_new_ms{0};         // test_fail_new_ms
std::atomic<uint64_t> g_failed_ms{0};      // sched_failed_ms

// Hands p (or an idle P) to an idle M, or to a new one (Go's startm). spinning: the M is
// counted in nmspinning already and looks for work to steal.
// A thread that cannot be started (a thread limit: pthread_create's EAGAIN) leaves the P
// idle, where a running M steals its fibers or a thread leaving a blocking region takes it;
// std::thread's exception ended the process (std::terminate) from sysmon's retake.
void startm(P* p, bool spinning) {
  M* nm;
  {
    std::lock_guard<std::mutex> l(S.lock);
    if (S.done.load(std::memory_order_acquire)) {
      if (p) pidleput(p);
      if (spinning) S.nmspinning.fetch_sub(1, std::memory_order_seq_cst);
      return;
    }
    if (!p) p = pidleget();
    if (!p) {
      if (spinning) S.nmspinning.fetch_sub(1, std::memory_order_seq_cst);
      return;
    }
    nm = S.midle;
    if (nm) {
      S.midle = nm->link;
      nm->idle = false;
    } else {
      nm = new M();
      nm->id = static_cast<int>(S.allm.size());
      nm->nextp = p;
      nm->spinning = spinning;
      S.allm.push_back(nm);
      try {
        if (g_fail_new_ms.load(std::memory_order_relaxed) > 0 &&
            g_fail_new_ms.fetch_sub(1, std::memory_order_relaxed) > 0)
          throw std::system_error(EAGAIN, std::generic_category(), "test_fail_new_ms");
        nm->thread = new std::thread(mstart, nm);
      } catch (const std::system_error& e) {
        S.allm.pop_back();
        delete nm;
        pidleput(p);
        if (spinning) S.nmspinning.fetch_sub(1, std::memory_order_seq_cst);
        g_failed_ms.fetch_add(1, std::memory_order_relaxed);
        log_error("cannot start a fiber worker thread (%s; %zu running): its P waits for "
                  "one that runs", e.what(), S.allm.size());
      }
      return;
    }
  }
  {
    std::lock_guard<std::mutex> l(nm->park_mu);
    nm->nextp = p;
    nm->spinning = spinning;
    nm->woken = true;
  }
  nm->park_cv.notify_one();
}

// Starts an M to look for work if a P is idle and nobody looks yet (Go's wakep). Called
// after work was queued.
void wakep() {
  // Dekker with findrunnable's "drop spinning, then look at the queues" (INV-SCHED-3):
  // the queue store above is ordered before these loads.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (S.npidle.load(std::memory_order_seq_cst) == 0) return;
  int zero = 0;
  if (S.nmspinning.load(std::memory_order_seq_cst) != 0 ||
      !S.nmspinning.compare_exchange_strong(zero, 1, std::memory_order_seq_cst))
    return;
  startm(nullptr, true);
}

void resetspinning(M* m) {
  if (!m->spinning) return;
  m->spinning = false;
  // The last spinning M found work: there may be more, so start another one.
  if (S.nmspinning.fetch_sub(1, std::memory_order_seq_cst) == 1) wakep();
}

void set_done() {
  std::vector<M*> wake;
  {
    std::lock_guard<std::mutex> l(S.lock);
    S.done.store(true, std::memory_order_seq_cst);
    for (M* m = S.midle; m; m = m->link) {
      m->idle = false;
      wake.push_back(m);
    }
    S.midle = nullptr;
  }
  for (M* m : wake) {
    {
      std::lock_guard<std::mutex> l(m->park_mu);
      m->nextp = nullptr;
      m->woken = true;
    }
    m->park_cv.notify_one();
  }
  sysmon_wake();
}

// On g0 without a P: sleeps (counted as stopped by the collector) until startm hands this M
// a P, the run ends, or `deadline` (the next timer) passes.
void stopm(M* m, uint64_t deadline) {
  {
    std::lock_guard<std::mutex> l(S.lock);
    if (S.done.load(std::memory_order_acquire)) return;
    m->link = S.midle;
    S.midle = m;
    m->idle = true;
  }
  P* np = nullptr;
  gc_blocking_begin();
  {
    std::unique_lock<std::mutex> l(m->park_mu);
    for (;;) {
      if (m->woken) break;
      uint64_t now = monotonic_ns();
      if (deadline != UINT64_MAX && now >= deadline) {
        // Timed out: leave the idle list, unless a startm took us off it and its wake-up
        // is on its way.
        std::lock_guard<std::mutex> sl(S.lock);
        if (m->idle) {
          M** pp = &S.midle;
          while (*pp != m) pp = &(*pp)->link;
          *pp = m->link;
          m->idle = false;
          break;
        }
        deadline = UINT64_MAX;
        continue;
      }
      if (deadline == UINT64_MAX) m->park_cv.wait(l);
      // At most an hour at a time (the loop looks again): a timer far away (gc_sleep of
      // UINT64_MAX ns) overflowed the condition variable's now() + d, which then spun.
      else m->park_cv.wait_for(l, std::chrono::nanoseconds(std::min<uint64_t>(deadline - now, kMaxParkNs)));
    }
    if (m->woken) {
      m->woken = false;
      np = m->nextp;
      m->nextp = nullptr;
    }
  }
  gc_blocking_end();
  if (np) acquirep(m, np);
}

// ---- Free lists ---------------------------------------------------------------------------

constexpr int kGSlab = 64;  // G objects allocated at a time

G* gfget(P* p) {
  if (p && p->gfree) {
    G* g = p->gfree;
    p->gfree = g->schedlink;
    p->ngfree--;
    return g;
  }
  std::lock_guard<std::mutex> l(S.lock);
  if (!S.gfree) {
    G* slab = new G[kGSlab];
    S.slabs.push_back(slab);
    for (int i = 0; i < kGSlab; i++) {
      slab[i].schedlink = S.gfree;
      S.gfree = &slab[i];
    }
  }
  G* g = S.gfree;
  S.gfree = g->schedlink;
  // Refill the P's list with up to half a cache, so the next spawns take no lock.
  while (p && S.gfree && p->ngfree < kPGCache / 2) {
    G* x = S.gfree;
    S.gfree = x->schedlink;
    x->schedlink = p->gfree;
    p->gfree = x;
    p->ngfree++;
  }
  return g;
}

void gfput(P* p, G* g) {
  g->status.store(GStatus::kFree, std::memory_order_release);
  if (p) {
    g->schedlink = p->gfree;
    p->gfree = g;
    if (++p->ngfree <= kPGCache) return;
    std::lock_guard<std::mutex> l(S.lock);
    while (p->ngfree > kPGCache / 2) {
      G* x = p->gfree;
      p->gfree = x->schedlink;
      p->ngfree--;
      x->schedlink = S.gfree;
      S.gfree = x;
    }
    return;
  }
  std::lock_guard<std::mutex> l(S.lock);
  g->schedlink = S.gfree;
  S.gfree = g;
}

bool stackget(P* p, StackMem* out) {
  if (p && p->nstacks > 0) {
    *out = p->stacks[--p->nstacks];
    return true;
  }
  return stack_mem_alloc(S.stack_size, out);
}

void stackput(P* p, const StackMem& mem) {
  if (!p) {
    stack_mem_free(&mem, 1);
    return;
  }
  if (p->nstacks == kPStackCache) {
    constexpr int half = kPStackCache / 2;
    stack_mem_free(p->stacks + half, half);
    p->nstacks = half;
  }
  p->stacks[p->nstacks++] = mem;
}

// ---- Switching ----------------------------------------------------------------------------

// Runs on the context just switched to, first thing: hands the previous context's stack to
// the collector (INV-SCHED-1), then runs the pending post-switch action for it.
void after_switch(Coro* self) {
#if TRICOLOR_ASAN
  __sanitizer_finish_switch_fiber(self->asan_fake, nullptr, nullptr);
#else
  (void)self;
#endif
  M* m = current_m();
  Coro* prev = m->prev;
  // The registers of prev were pushed on its stack by the switch, below its return
  // address, and prev->sp points at them: the scan of [sp, hi) covers them.
  if (!m->prev_dead) stack_park(prev->stack, reinterpret_cast<uintptr_t>(prev->sp));
  if (PostFn fn = m->post_fn) {
    m->post_fn = nullptr;
    fn(m, prev, m->post_arg);
  }
}

// Switches the calling M from `from` to `to` (INV-SCHED-1: `to`'s stack is ours before we
// run on it; `from`'s is parked only after its registers are saved). post(m, from, arg)
// runs on `to` right after. Returns when something switches back to `from`, possibly on
// another thread: callers re-read current_m() afterwards (INV-SCHED-4).
void switch_coro(M* m, Coro* from, Coro* to, PostFn post, void* arg, bool from_dead) {
  stack_unpark(to->stack);  // waits while a mark worker scans it
  set_current_stack(to->stack);
  m->post_fn = post;
  m->post_arg = arg;
  m->prev = from;
  m->prev_dead = from_dead;
#if TRICOLOR_ASAN
  __sanitizer_start_switch_fiber(from_dead ? nullptr : &from->asan_fake,
                                 reinterpret_cast<const void*>(to->stack->lo),
                                 to->stack->hi - to->stack->lo);
#endif
#if TRICOLOR_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
  // The exceptions `from` is handling stay with it, wherever it resumes (context.h).
  // Cost: two 16-byte copies; the thread's state was looked up when the M started.
  from->eh = *m->eh;
  *m->eh = to->eh;
  tricolor_ctx_switch(&from->sp, to->sp);
  after_switch(from);
}

// Runs g on m (which holds a P), switching from `from`.
void execute(M* m, Coro* from, G* g, PostFn post, void* arg, bool from_dead) {
  P* p = m->p;
  // relaxed: sysmon only compares two readings of the counter.
  p->schedtick.store(p->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  p->preempt.store(false, std::memory_order_relaxed);
  p->nrun.store(p->nrun.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g->status.store(GStatus::kRunning, std::memory_order_relaxed);
  m->curg = g;
  switch_coro(m, from, &g->co, post, arg, from_dead);
}

void run_due_timers() {
  if (S.next_timer.load(std::memory_order_relaxed) == UINT64_MAX) return;
  uint64_t now = monotonic_ns();
  if (S.next_timer.load(std::memory_order_relaxed) <= now) run_timers(now);
}

// The next fiber for p without blocking or stealing (step 3 of the overview), or nullptr.
G* runnable_fast(P* p) {
  if (p->schedtick.load(std::memory_order_relaxed) % 61 == 0) {
    // Fairness: now and then the global queue (and the timers) go first.
    run_due_timers();
    if (S.runq.size.load(std::memory_order_relaxed) > 0) {
      std::lock_guard<std::mutex> l(S.lock);
      if (G* g = globrunqget(p, 1)) return g;
    }
  }
  if (G* g = runqget(p)) return g;
  if (S.runq.size.load(std::memory_order_relaxed) > 0) {
    std::lock_guard<std::mutex> l(S.lock);
    if (G* g = globrunqget(p, 0)) return g;
  }
  return nullptr;
}

// Ready g to run (status kWaiting or new): on the caller's P if it has one, else global.
void ready(M* m, G* g, bool next) {
  g->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  if (m && m->p) {
    runqput(m->p, g, next);
  } else {
    std::lock_guard<std::mutex> l(S.lock);
    globrunqput(g);
  }
  wakep();
}

// Switches the current fiber out: to the next runnable fiber of the P, or to g0, which
// looks further (steals, sleeps). post(m, fiber, arg) then runs for the fiber switched out.
void park_current(M* m, PostFn post, void* arg, bool dead) {
  G* g = m->curg;
  if (m->nop) {  // it ran without a P (pinned across a blocking region): that ends here
    m->nop = false;
    S.nmnop.fetch_sub(1, std::memory_order_seq_cst);
  }
  if (m->p) {
    if (G* next = runnable_fast(m->p)) {
      execute(m, &g->co, next, post, arg, dead);
      return;
    }
  }
  m->curg = nullptr;
  switch_coro(m, &g->co, &m->g0, post, arg, dead);
}

// ---- Post-switch actions (run on the next context for the one switched out) ---------------

void post_yield(M* m, Coro* prev, void*) {
  G* g = prev->g;
  g->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  runqput(m->p, g, false);
}

void post_global(M* m, Coro* prev, void*) {
  (void)m;
  G* g = prev->g;
  g->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> l(S.lock);
    globrunqput(g);
  }
  wakep();
}

void post_join(M* m, Coro* prev, void* arg) {
  G* target = static_cast<G*>(arg);
  G* self = prev->g;
  G* exp = nullptr;
  // acq_rel: pairs with the exchange in post_exit.
  if (target->joiner.compare_exchange_strong(exp, self, std::memory_order_acq_rel)) return;
  if (exp != kJoinDone) self->join_failed = true;  // another joiner won the race
  ready(m, self, true);
}

bool timer_less(const G* a, const G* b) { return a->wake_ns > b->wake_ns; }  // min-heap

void post_sleep(M*, Coro* prev, void*) {
  G* g = prev->g;
  std::lock_guard<std::mutex> l(S.timer_mu);
  S.timers.push_back(g);
  std::push_heap(S.timers.begin(), S.timers.end(), timer_less);
  S.next_timer.store(S.timers.front()->wake_ns, std::memory_order_relaxed);
}

void post_exit(M* m, Coro* prev, void*) {
  G* g = prev->g;
  stack_retire(&g->stack);  // INV-SCHED-2: a dead fiber is not scanned
#if TRICOLOR_TSAN
  __tsan_destroy_fiber(g->co.tsan_fiber);
  g->co.tsan_fiber = nullptr;
#endif
  stackput(m->p, g->mem);
  g->mem = StackMem{};
  g->status.store(GStatus::kDead, std::memory_order_relaxed);
  // Last access to g's fields by this side: a joiner may free g as soon as it sees kJoinDone.
  G* w = g->joiner.exchange(kJoinDone, std::memory_order_acq_rel);
  if (w == kThreadJoiner) g->joiner.notify_all();
  else if (w) ready(m, w, true);
  if (S.ngoroutines.fetch_sub(1, std::memory_order_acq_rel) == 1) set_done();
}

// ---- Fibers -------------------------------------------------------------------------------

[[noreturn]] void fiber_exit();

// A fiber returned inside gc_blocking_begin/end regions it never closed. Left open, they
// would outlive the fiber on its thread (the M): the thread would count as blocked from a
// stack that is dead, its scheduler stack never reaches a safepoint while so counted, and
// the next collection waits for it forever. Closed here as the fiber's own gc_blocking_end
// calls would have closed them. The last one may park the fiber (its P was retaken), so the
// thread is looked up again after each.
[[gnu::cold, gnu::noinline]] void close_blocking_regions() {
  log_error("a fiber returned inside gc_blocking_begin/end (%d unclosed): closed",
            current_thread()->blocking_depth);
  while (current_thread()->blocking_depth > 0) gc_blocking_end();
}

// The first frame of every fiber (via tricolor_ctx_entry). noexcept: an exception that
// escapes a fiber function terminates the program (there is no frame to unwind into).
void fiber_start(void* a0, void* a1) noexcept {
  G* g = static_cast<G*>(a0);
  after_switch(&g->co);
  g->fn(a1);
  if (current_thread()->blocking_depth > 0) [[unlikely]] close_blocking_regions();
  fiber_exit();
}

[[noreturn]] void fiber_exit() {
  M* m = current_m();
  park_current(m, post_exit, nullptr, true);
  __builtin_unreachable();
}

// Creates a fiber running fn(arg) and makes it runnable (step 1 of the overview).
G* newproc(M* m, gc_fiber_fn fn, void* arg) {
  P* p = m->p;
  G* g = gfget(p);
  if (!stackget(p, &g->mem)) {
    gfput(p, g);
    return nullptr;
  }
  g->fn = fn;
  g->joiner.store(nullptr, std::memory_order_relaxed);
  g->join_failed = false;
  g->id = S.next_id.fetch_add(1, std::memory_order_relaxed) + 1;
  g->co.g = g;
  g->co.stack = &g->stack;
  g->co.asan_fake = nullptr;
  g->co.eh = EhState{};  // a new fiber handles no exception yet
  if (g->stack_registered) {
    stack_revive(&g->stack, g->mem.lo, g->mem.hi);  // no registry lock (stacks.h)
  } else {
    stack_register(&g->stack, g->mem.lo, g->mem.hi, "fiber");
    g->stack_registered = true;
  }
  stack_unpark(&g->stack);  // ours while we write its first frame
#if TRICOLOR_ASAN
  __asan_unpoison_memory_region(reinterpret_cast<void*>(g->mem.lo), g->mem.size());
#endif
  g->co.sp = ctx_make(g->mem.lo, g->mem.hi, fiber_start, g, arg);
  stack_park(&g->stack, reinterpret_cast<uintptr_t>(g->co.sp));
  // INV-SCHED-5: arg moves from the caller's stack to a stack that may already be black.
  shade_if_marking(arg);
#if TRICOLOR_TSAN
  g->co.tsan_fiber = __tsan_create_fiber(0);
#endif
  S.ngoroutines.fetch_add(1, std::memory_order_relaxed);
  ready(m, g, true);
  return g;
}

// Finds a fiber to run, on g0; steals, spins, then sleeps (step 4 of the overview).
// nullptr when the run is over.
G* find_runnable(M* m) {
  for (;;) {
    if (S.done.load(std::memory_order_acquire)) return nullptr;
    if (!m->p) {
      uint64_t deadline = S.next_timer.load(std::memory_order_relaxed);
      stopm(m, deadline);
      if (!m->p && deadline != UINT64_MAX && monotonic_ns() >= deadline) {
        // Woken by a timer: take a P to run the fibers it readies, or let another M do it.
        P* np;
        {
          std::lock_guard<std::mutex> l(S.lock);
          np = pidleget();
        }
        if (np) acquirep(m, np);
        else run_timers(monotonic_ns());  // readies into the global queue, wakes an M
      }
      continue;
    }
    P* p = m->p;
    gc_safepoint();  // g0 runs no fiber but is an attached thread: stop / scan when asked
    run_due_timers();
    if (G* g = runnable_fast(p)) {
      resetspinning(m);
      return g;
    }
    // Steal: become a spinning M unless half the busy P's already have one (Go's limit).
    int busy = S.nprocs - S.npidle.load(std::memory_order_relaxed);
    if (!m->spinning && 2 * S.nmspinning.load(std::memory_order_relaxed) < busy) {
      m->spinning = true;
      S.nmspinning.fetch_add(1, std::memory_order_seq_cst);
    }
    if (m->spinning && S.nprocs > 1) {
      for (int round = 0; round < 4; round++) {
        uint32_t start = fastrand();
        for (int i = 0; i < S.nprocs; i++) {
          P* v = S.allp[(start + i) % S.nprocs];
          if (v == p) continue;
          if (G* g = runqsteal(p, v, round == 3)) {
            p->nsteal.store(p->nsteal.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            resetspinning(m);
            return g;
          }
        }
        if (S.runq.size.load(std::memory_order_relaxed) > 0) break;
        for (int k = 0; k < 64; k++) cpu_relax();
      }
      if (S.runq.size.load(std::memory_order_relaxed) > 0) continue;
    }
    // Nothing to do: give the P up.
    G* last = nullptr;
    {
      std::lock_guard<std::mutex> l(S.lock);
      if (S.done.load(std::memory_order_acquire)) return nullptr;
      last = globrunqget(p, 0);
      if (!last) {
        pidleput(p);
        m->p = nullptr;
      }
    }
    if (last) {
      resetspinning(m);  // outside the lock: it may start an M
      return last;
    }
    if (m->spinning) {
      m->spinning = false;
      S.nmspinning.fetch_sub(1, std::memory_order_seq_cst);
      // INV-SCHED-3: work queued by an M that saw us spinning (and so did not wake anyone)
      // is found by this re-check, made after the decrement.
      bool work = S.runq.size.load(std::memory_order_seq_cst) > 0;
      for (int i = 0; i < S.nprocs && !work; i++) work = !S.allp[i]->runq.empty();
      if (work) {
        P* np;
        {
          std::lock_guard<std::mutex> l(S.lock);
          np = pidleget();
        }
        if (np) {
          acquirep(m, np);
          m->spinning = true;
          S.nmspinning.fetch_add(1, std::memory_order_seq_cst);
          continue;
        }
      }
    }
  }
}

// The scheduler loop of an M, on its own thread stack (g0).
void schedule_loop(M* m) {
  while (G* g = find_runnable(m)) execute(m, &m->g0, g, nullptr, nullptr, false);
}

void init_g0(M* m) {
  tls_m = m;
  m->t = current_thread();
  m->g0.stack = thread_stack();
  m->g0.g = nullptr;
  m->eh = thread_eh_state();
#if TRICOLOR_TSAN
  m->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
}

void mstart(M* m) {
  gc_thread_attach();
  ThreadState* t = current_thread();
  snprintf(t->name, sizeof t->name, "fiber worker %d", m->id);  // named in STW warnings
  char os_name[16];
  snprintf(os_name, sizeof os_name, "tricolor-m%d", m->id);
  set_thread_name(os_name);
  init_g0(m);
  altstack_begin(&m->sigstack);  // a fiber stack overflow is reported on it (overflow.cc)
  P* p;
  {
    std::lock_guard<std::mutex> l(m->park_mu);
    p = m->nextp;
    m->nextp = nullptr;
  }
  acquirep(m, p);
  schedule_loop(m);
  if (m->p) {
    std::lock_guard<std::mutex> l(S.lock);
    pidleput(m->p);
    m->p = nullptr;
  }
  altstack_end(&m->sigstack);
  tls_m = nullptr;
  gc_thread_detach();
}

void sched_reset(int nprocs) {
  S.runq.head = S.runq.tail = nullptr;
  S.runq.size.store(0);
  S.pidle = nullptr;
  S.npidle.store(0);
  S.midle = nullptr;
  S.nmspinning.store(0);
  S.nmnop.store(0);
  S.ngoroutines.store(0);
  S.done.store(false);
  S.gfree = nullptr;
  S.next_id.store(0);
  S.next_timer.store(UINT64_MAX);
  S.timers.clear();
  S.stack_size = configured_fiber_stack_size();
  S.nprocs = nprocs;
  g_active_procs.store(nprocs, std::memory_order_relaxed);
  S.allp.clear();
  for (int i = 0; i < nprocs; i++) {
    P* p = new P();
    p->id = i;
    S.allp.push_back(p);
  }
  std::lock_guard<std::mutex> l(S.lock);
  for (int i = nprocs - 1; i >= 0; i--) pidleput(S.allp[i]);
}

// After the run: every fiber is dead, every other M exits; frees what the run owned.
void sched_teardown(M* m0) {
  g_active_procs.store(0, std::memory_order_relaxed);
  if (m0->p) {
    std::lock_guard<std::mutex> l(S.lock);
    pidleput(m0->p);
    m0->p = nullptr;
  }
  sysmon_stop();
  std::vector<M*> ms;
  {
    std::lock_guard<std::mutex> l(S.lock);
    ms = S.allm;
  }
  gc_blocking_begin();  // joining threads is a wait
  for (M* m : ms)
    if (m->thread) m->thread->join();
  gc_blocking_end();
  g_last_stats.clear();
  for (P* p : S.allp) {
    stack_mem_free(p->stacks, p->nstacks);
    p->nstacks = 0;
    SchedPStats s;
    s.fibers_run = p->nrun.load();
    s.steals = p->nsteal.load();
    s.preemptions = p->npreempt.load();
    s.retaken = p->nretaken.load();
    g_last_stats.push_back(s);
  }
  stack_mem_release_pool();
  g_last_threads = static_cast<int>(ms.size());
  for (P* p : S.allp) delete p;
  S.allp.clear();
  for (M* m : ms) {
    delete m->thread;
    delete m;
  }
  {
    std::lock_guard<std::mutex> l(S.lock);
    S.allm.clear();
    for (G* slab : S.slabs) {
      for (int i = 0; i < kGSlab; i++)
        if (slab[i].stack_registered) stack_unregister(&slab[i].stack);
      delete[] slab;
    }
    S.slabs.clear();
    S.gfree = nullptr;
  }
  tls_m = nullptr;
}

[[gnu::noinline]] void thread_sleep(uint64_t ns) {
  gc_blocking_begin();
  std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
  gc_blocking_end();
}

// True when the calling code runs on a fiber that may switch (not in a blocking region).
M* fiber_m() {
  M* m = current_m();
  if (!m || !m->curg) return nullptr;
  if (m->t->blocking_depth > 0) return nullptr;
  return m;
}

}  // namespace

// Called by the SIGSEGV handler (overflow.cc) on the faulting thread. Only this thread writes
// its M's curg, always before it switches to the fiber, so it names the fiber whose stack
// the thread runs on whenever a fiber faults.
bool sched_fiber_stack_of_thread(StackMem* out) {
  M* m = tls_m;
  if (!m || !m->curg) return false;
  *out = m->curg->mem;
  return true;
}

// ---- Shared with sysmon.cc ------------------------------------------------------------------

int sched_nprocs() { return S.nprocs; }
P* sched_p(int i) { return S.allp[i]; }
bool sched_all_idle() { return S.npidle.load(std::memory_order_relaxed) == S.nprocs; }
int64_t sched_nmnop() { return S.nmnop.load(std::memory_order_relaxed); }
uint64_t next_timer_ns() { return S.next_timer.load(std::memory_order_relaxed); }

void handoffp(P* p) {
  // It has work: give it to an M at once.
  if (!p->runq.empty() || S.runq.size.load(std::memory_order_seq_cst) > 0) {
    startm(p, false);
    return;
  }
  // Nobody spins and no P is idle: start a spinning M in case work appears (Go's rule).
  int zero = 0;
  if (S.nmspinning.load() + S.npidle.load() == 0 && S.nmspinning.compare_exchange_strong(zero, 1)) {
    startm(p, true);
    return;
  }
  {
    std::lock_guard<std::mutex> l(S.lock);
    if (S.runq.size.load(std::memory_order_relaxed) == 0 || S.done.load()) {
      pidleput(p);
      return;
    }
  }
  startm(p, false);
}

uint64_t run_timers(uint64_t now) {
  G* due[64];
  int n = 0;
  uint64_t next;
  {
    std::lock_guard<std::mutex> l(S.timer_mu);
    while (!S.timers.empty() && S.timers.front()->wake_ns <= now && n < 64) {
      std::pop_heap(S.timers.begin(), S.timers.end(), timer_less);
      due[n++] = S.timers.back();
      S.timers.pop_back();
    }
    next = S.timers.empty() ? UINT64_MAX : S.timers.front()->wake_ns;
    S.next_timer.store(next, std::memory_order_relaxed);
  }
  M* m = current_m();
  for (int i = 0; i < n; i++) ready(m, due[i], false);
  return next;
}

// ---- Hooks of the collector (gc/stacks.h) ---------------------------------------------------

// gc_blocking_begin on a fiber: the P may be retaken by sysmon while the M blocks (step 5).
void sched_blocking_begin() {
  M* m = current_m();
  if (!m || !m->curg || !m->p) return;
  P* p = m->p;
  m->blocking = true;
  p->blocktick.store(p->blocktick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  p->status.store(PStatus::kBlocking, std::memory_order_seq_cst);
}

// gc_blocking_end on a fiber: take the P back, or another idle one, or queue the fiber
// and let the M sleep. A pinned fiber (ThreadState::locks) runs on without a P instead,
// up to its next scheduling point (INV-SCHED-4).
void sched_blocking_end() {
  M* m = current_m();
  if (!m || !m->blocking) return;
  m->blocking = false;
  G* g = m->curg;
  // The registers gc_blocking_begin saved are stale now (the stack is ours again).
  memset(g->stack.regs, 0, sizeof g->stack.regs);
  PStatus exp = PStatus::kBlocking;
  if (m->p->status.compare_exchange_strong(exp, PStatus::kRunning, std::memory_order_acq_rel)) return;
  m->p = nullptr;  // sysmon gave it to another M
  P* np;
  {
    std::lock_guard<std::mutex> l(S.lock);
    np = pidleget();
  }
  if (np) {
    acquirep(m, np);
    return;
  }
  if (m->t->locks > 0) {
    m->nop = true;
    S.nmnop.fetch_add(1, std::memory_order_seq_cst);
    poll_set(kPollPreempt);  // its next safepoint outside the allocator requeues it
    return;
  }
  g->status.store(GStatus::kWaiting, std::memory_order_relaxed);
  park_current(m, post_global, nullptr, false);
}

// Safepoint with kPollPreempt: a fiber sysmon asked to yield goes to the global queue.
void sched_safepoint() {
  M* m = current_m();
  if (!m || !m->curg) return;
  if (m->t->locks > 0 || m->t->blocking_depth > 0) return;  // pinned: honoured later
  if (P* p = m->p) {
    if (!p->preempt.load(std::memory_order_relaxed)) return;
    p->preempt.store(false, std::memory_order_relaxed);
    p->npreempt.store(p->npreempt.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else if (!m->nop) {
    return;
  }
  m->curg->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  park_current(m, post_global, nullptr, false);
}

// ---- Internal API -------------------------------------------------------------------------

void sched_set_procs(int n) { g_procs_override = n > 0 ? n : 0; }
int sched_active_procs() { return g_active_procs.load(std::memory_order_relaxed); }
int sched_procs() {
  return g_running.load() && S.nprocs ? S.nprocs : static_cast<int>(g_last_stats.size());
}
SchedPStats sched_p_stats(int i) {
  if (g_running.load() && i < static_cast<int>(S.allp.size())) {
    P* p = S.allp[i];
    SchedPStats s;
    s.fibers_run = p->nrun.load(std::memory_order_relaxed);
    s.steals = p->nsteal.load(std::memory_order_relaxed);
    s.preemptions = p->npreempt.load(std::memory_order_relaxed);
    s.retaken = p->nretaken.load(std::memory_order_relaxed);
    return s;
  }
  return i < static_cast<int>(g_last_stats.size()) ? g_last_stats[i] : SchedPStats{};
}
int sched_current_p() {
  M* m = current_m();
  return m && m->curg && m->p ? m->p->id : -1;
}
bool sched_fiber_waiting(gc_fiber* f) {
  G* g = reinterpret_cast<G*>(f);
  return g->status.load(std::memory_order_acquire) == GStatus::kWaiting &&
         g->stack.state.load(std::memory_order_acquire) != Stack::State::kRunning;
}
int sched_threads() {
  if (g_running.load()) {
    std::lock_guard<std::mutex> l(S.lock);
    return static_cast<int>(S.allm.size());
  }
  return g_last_threads;
}
void test_fail_new_ms(int n) { g_fail_new_ms.store(n, std::memory_order_relaxed); }
uint64_t sched_failed_ms() { return g_failed_ms.load(std::memory_order_relaxed); }

}  // namespace tricolor::internal

using namespace tricolor::internal;

// ---- The C API (tricolor/fiber.h) ---------------------------------------------------------

extern "C" {

int gc_run(gc_fiber_fn main_fn, void* arg) {
  if (!collector_initialized()) {
    log_error("gc_run called %s", ever_initialized() ? "after gc_shutdown" : "before gc_init");
    return -1;
  }
  if (!main_fn) {
    log_error("gc_run(NULL): no main fiber function");
    return -1;
  }
  bool expected = false;
  if (!g_running.compare_exchange_strong(expected, true)) {
    log_error("gc_run called while the scheduler is already running (gc_run does not nest, "
              "and one scheduler runs at a time); returns -1");
    return -1;
  }
  collector_sched_running(true);
  bool attached_here = false;
  if (!current_thread()) {
    if (gc_thread_attach() != 0) {
      collector_sched_running(false);
      g_running.store(false);
      return -1;
    }
    attached_here = true;
  }
  if (current_thread()->blocking_depth > 0) {
    log_error("gc_run called inside gc_blocking_begin/end; returns -1");
    if (attached_here) gc_thread_detach();
    collector_sched_running(false);
    g_running.store(false);
    return -1;
  }
  int nprocs = g_procs_override > 0 ? g_procs_override : configured_procs();
  sched_reset(std::max(nprocs, 1));
  M* m0 = new M();
  m0->id = 0;
  {
    std::lock_guard<std::mutex> l(S.lock);
    S.allm.push_back(m0);
  }
  init_g0(m0);
  overflow_handler_install();
  altstack_begin(&m0->sigstack);
  {
    P* p;
    {
      std::lock_guard<std::mutex> l(S.lock);
      p = pidleget();
    }
    acquirep(m0, p);
  }
  int rc = 0;
  if (!newproc(m0, main_fn, arg)) {
    log_error("gc_run: no stack could be mapped for the main fiber: gc_run returns -1");
    rc = -1;
  } else {
    sysmon_start();
    schedule_loop(m0);
  }
  altstack_end(&m0->sigstack);
  sched_teardown(m0);
  if (attached_here) gc_thread_detach();
  collector_sched_running(false);
  g_running.store(false);
  return rc;
}

gc_fiber* gc_go(gc_fiber_fn fn, void* arg) {
  // A safepoint, first (the fiber may move to another M there): a loop that spawns fibers
  // allocates from no heap, and 150,000 spawns held a collection's stop of the world up for
  // 1.3 s.
  gc_safepoint();
  M* m = current_m();
  if (!m || !m->curg) {
    log_error("gc_go called outside gc_run (not on a fiber): returns NULL");
    return nullptr;
  }
  if (m->t->blocking_depth > 0) {
    log_error("gc_go called inside gc_blocking_begin/end: returns NULL");
    return nullptr;
  }
  if (!fn) {
    log_error("gc_go(NULL, ...): no fiber function; returns NULL");
    return nullptr;
  }
  G* g = newproc(m, fn, arg);
  if (!g) {
    // The OS refused the stack's mapping; the line before this one says how. The usual
    // cause is the limit on a process's mappings, reached at a few tens of thousands of
    // live fibers.
    log_error("gc_go: no stack could be mapped for the new fiber (%lld fibers alive; each "
              "fiber stack is two kernel mappings, see vm.max_map_count): gc_go returns NULL",
              static_cast<long long>(S.ngoroutines.load(std::memory_order_relaxed)));
  }
  return reinterpret_cast<gc_fiber*>(g);
}

void gc_yield(void) {
  // Scheduling points are safepoints (as Go's schedule is): fibers that only switch must
  // not hold up a stop of the world or a stack scan.
  gc_safepoint();
  M* m = fiber_m();
  if (!m) {
    std::this_thread::yield();
    return;
  }
  G* g = m->curg;
  if (!m->p) {  // pinned fiber that lost its P: requeue it now
    g->status.store(GStatus::kRunnable, std::memory_order_relaxed);
    park_current(m, post_global, nullptr, false);
    return;
  }
  G* next = runnable_fast(m->p);
  if (!next) return;  // nothing else to run here
  g->status.store(GStatus::kRunnable, std::memory_order_relaxed);
  execute(m, &g->co, next, post_yield, nullptr, false);
}

void gc_join(gc_fiber* f) {
  if (!f) {
    log_error("gc_join(NULL): no fiber to join");
    return;
  }
  if (!g_running.load()) {
    // No run is on: every handle is stale (gc_run releases its fibers when it returns), and
    // reading through one would read freed memory.
    log_error("gc_join(%p) called while no gc_run is running: a fiber handle does not outlive "
              "its gc_run; ignored", static_cast<void*>(f));
    return;
  }
  G* g = reinterpret_cast<G*>(f);
  if (g->status.load(std::memory_order_acquire) == GStatus::kFree) {
    log_error("gc_join: fiber %p was already joined (a handle is valid until its gc_join "
              "returns)", static_cast<void*>(f));
    return;
  }
  gc_safepoint();
  M* m = current_m();
  if (m && m->curg == g) {
    log_error("gc_join: a fiber cannot join itself");
    return;
  }
  G* j = g->joiner.load(std::memory_order_acquire);
  if (j != nullptr && j != kJoinDone) {
    log_error("gc_join: fiber %p is already being joined", static_cast<void*>(f));
    return;
  }
  if (j != kJoinDone) {
    if ((m = fiber_m())) {
      G* self = m->curg;
      self->join_failed = false;
      self->status.store(GStatus::kWaiting, std::memory_order_relaxed);
      park_current(m, post_join, g, false);
      if (self->join_failed) {
        log_error("gc_join: fiber %p is already being joined", static_cast<void*>(f));
        return;
      }
    } else {
      // A plain thread (or a fiber inside a blocking region) waits as a thread.
      G* exp = nullptr;
      if (g->joiner.compare_exchange_strong(exp, kThreadJoiner, std::memory_order_acq_rel)) {
        gc_blocking_begin();
        while (g->joiner.load(std::memory_order_acquire) == kThreadJoiner)
          g->joiner.wait(kThreadJoiner, std::memory_order_acquire);
        gc_blocking_end();
      } else if (exp != kJoinDone) {
        log_error("gc_join: fiber %p is already being joined", static_cast<void*>(f));
        return;
      }
    }
  }
  TRICOLOR_ASSERT(g->joiner.load(std::memory_order_acquire) == kJoinDone);
  M* fm = fiber_m();  // not a P inside a blocking region: sysmon may be retaking it
  gfput(fm ? fm->p : nullptr, g);
}

void gc_sleep(uint64_t ns) {
  // 2^63 ns (292 years) is forever in practice; the bound keeps the deadline from wrapping
  // around (monotonic_ns() < 2^63) and std::chrono's signed count from turning negative.
  ns = std::min<uint64_t>(ns, INT64_MAX);
  gc_safepoint();
  M* m = fiber_m();
  if (!m) {
    thread_sleep(ns);
    return;
  }
  if (ns == 0 || !m->p) {
    gc_yield();  // without a P (pinned, see sched_blocking_end) this requeues it first
    if (ns == 0) return;
    m = current_m();
  }
  G* self = m->curg;
  self->wake_ns = monotonic_ns() + ns;
  self->status.store(GStatus::kWaiting, std::memory_order_relaxed);
  park_current(m, post_sleep, nullptr, false);
}

gc_fiber* gc_fiber_self(void) {
  M* m = current_m();
  return m ? reinterpret_cast<gc_fiber*>(m->curg) : nullptr;
}

}  // extern "C"
