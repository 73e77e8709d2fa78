// sysmon (lib/sched/sysmon.cc): the blocking hand-off and preemption requests.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "os/clock.h"
#include "sched/fibers.h"
#include "sched/sched.h"
#include "tricolor/fiber.h"
#include "tricolor/gc.h"

using namespace tricolor::test;
using namespace tricolor::internal;

namespace {

constexpr uint64_t kGiveUpNs = 20ull * 1000000000;  // a hang, not a slow machine

struct HandOff {
  std::atomic<long> progress{0};
  std::atomic<bool> blocker_done{false};
  long seen_while_blocked = 0;
  bool gave_up = false;
};

// Waits inside a blocking region (as around a system call) until the other fibers made
// progress. With one P they can only run if sysmon handed the P to another worker.
void blocker(void* a) {
  auto* h = static_cast<HandOff*>(a);
  long start = h->progress.load();
  uint64_t t0 = tricolor::internal::monotonic_ns();
  gc_blocking_begin();
  while (h->progress.load() < start + 1000) {
    if (tricolor::internal::monotonic_ns() - t0 > kGiveUpNs) {
      h->gave_up = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  gc_blocking_end();
  h->seen_while_blocked = h->progress.load() - start;
  h->blocker_done = true;
}

void worker(void* a) {
  auto* h = static_cast<HandOff*>(a);
  while (!h->blocker_done.load()) {
    h->progress.fetch_add(1);
    gc_yield();
  }
}

}  // namespace

TEST_CASE("a fiber blocked in a blocking region hands its P over so others keep running",
          "[sched][sysmon]") {
  HandOff h;
  int rc = run_fibers(1, [&] {
    gc_fiber* b = gc_go(blocker, &h);
    gc_fiber* w1 = gc_go(worker, &h);
    gc_fiber* w2 = gc_go(worker, &h);
    gc_join(b);
    gc_join(w1);
    gc_join(w2);
  });
  REQUIRE(rc == 0);
  CHECK_FALSE(h.gave_up);
  CHECK(h.seen_while_blocked >= 1000);
  CHECK(sched_retakes() >= 1);
  CHECK(sched_p_stats(0).retaken >= 1);
  CHECK(sched_threads() >= 2);  // the P went to a second worker thread
}

TEST_CASE("a long-running fiber is asked to yield and does so at gc_safepoint",
          "[sched][sysmon]") {
  struct Ctx {
    std::atomic<bool> started{false};
    std::atomic<bool> stop{false};
    bool gave_up = false;
    long polls = 0;
  } c;
  int rc = run_fibers(1, [&] {
    gc_fiber* spinner = gc_go([](void* a) {
      auto* c = static_cast<Ctx*>(a);
      c->started = true;
      uint64_t t0 = monotonic_ns();
      // Never yields by itself: only a preemption at gc_safepoint lets the main fiber,
      // queued on the same (only) P, run and set `stop`.
      while (!c->stop.load(std::memory_order_relaxed)) {
        gc_safepoint();
        c->polls++;
        if ((c->polls & 1023) == 0 && monotonic_ns() - t0 > kGiveUpNs) {
          c->gave_up = true;
          break;
        }
      }
    }, &c);
    while (!c.started.load()) gc_yield();
    c.stop = true;
    gc_join(spinner);
  });
  REQUIRE(rc == 0);
  CHECK_FALSE(c.gave_up);
  CHECK(sched_preempt_requests() >= 1);
  CHECK(sched_p_stats(0).preemptions >= 1);
  // Once honoured, no request is left over: safepoints take their fast path again.
  CHECK((__atomic_load_n(&tricolor_poll_request, __ATOMIC_RELAXED) & kPollPreempt) == 0);
}
