// What a context switch carries besides the registers (lib/sched/context.h, switch_coro in
// proc.cc): the C++ runtime's exception-handling state, which belongs to the fiber and not
// to the thread it happens to run on.
#include <catch2/catch.hpp>

#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "sched/fibers.h"
#include "tricolor/fiber.h"

using namespace tricolor::test;

namespace {

constexpr int kFibers = 200;

struct EhCase {
  int i = 0;
  std::atomic<int>* wrong = nullptr;
  std::atomic<int>* done = nullptr;
};

// Spawns kFibers fibers running fn on cases 0..kFibers-1 and joins them.
void spawn_cases(gc_fiber_fn fn, std::vector<EhCase>& cases) {
  std::vector<gc_fiber*> fs;
  for (EhCase& c : cases) fs.push_back(gc_go(fn, &c));
  for (gc_fiber* f : fs)
    if (f) gc_join(f);
}

// A bare `throw;` rethrows the exception the fiber is handling: the top of its own stack of
// caught exceptions, not of the thread's.
void rethrow_own(void* a) {
  auto* c = static_cast<EhCase*>(a);
  try {
    throw std::runtime_error(std::to_string(c->i));
  } catch (...) {
    gc_yield();
    try {
      throw;
    } catch (const std::exception& e) {
      if (e.what() != std::to_string(c->i)) c->wrong->fetch_add(1);
    }
  }
  c->done->fetch_add(1);
}

// The exception a handler holds lives until that handler ends, whatever other fibers'
// handlers end meanwhile.
void hold_across_yields(void* a) {
  auto* c = static_cast<EhCase*>(a);
  try {
    throw std::runtime_error(std::to_string(c->i));
  } catch (const std::exception& e) {
    gc_yield();
    gc_yield();
    if (e.what() != std::to_string(c->i)) c->wrong->fetch_add(1);
  }
  c->done->fetch_add(1);
}

}  // namespace

// kFibers fibers each run `body` with its own case, on 1 and then 2 P's; none may see
// another's exception.
void check_cases(gc_fiber_fn body) {
  for (int procs : {1, 2}) {
    CAPTURE(procs);
    std::atomic<int> wrong{0}, done{0};
    std::vector<EhCase> cases(kFibers);
    for (int i = 0; i < kFibers; i++) cases[i] = EhCase{i, &wrong, &done};
    CHECK(run_fibers(procs, [&] { spawn_cases(body, cases); }) == 0);
    CHECK(done.load() == kFibers);
    CHECK(wrong.load() == 0);
  }
}

TEST_CASE("a rethrow on a fiber that yielded inside its handler rethrows its own exception",
          "[sched][context]") {
  check_cases(rethrow_own);
}

TEST_CASE("an exception a fiber's handler holds outlives other fibers' handlers",
          "[sched][context]") {
  check_cases(hold_across_yields);
}

namespace {

struct Unwinding {
  std::atomic<bool> stop{false};
  int in_destructor[2] = {-1, -1};  // std::uncaught_exceptions() around a yield, unwinding
  int other_max = 0;                // the most the other fiber ever saw
  int after = -1;                   // the unwinding fiber, once its handler ran
};

struct YieldingDestructor {
  Unwinding* u;
  ~YieldingDestructor() {
    u->in_destructor[0] = std::uncaught_exceptions();
    gc_yield();
    u->in_destructor[1] = std::uncaught_exceptions();
  }
};

void unwind_with_yield(void* a) {
  auto* u = static_cast<Unwinding*>(a);
  try {
    YieldingDestructor d{u};
    gc_yield();
    throw 1;
  } catch (int) {
  }
  u->after = std::uncaught_exceptions();
  u->stop.store(true);
}

void watch_uncaught(void* a) {
  auto* u = static_cast<Unwinding*>(a);
  while (!u->stop.load()) {
    u->other_max = std::max(u->other_max, std::uncaught_exceptions());
    gc_yield();
  }
}

}  // namespace

TEST_CASE("std::uncaught_exceptions counts the exceptions of the calling fiber only",
          "[sched][context]") {
  for (int procs : {1, 2}) {
    CAPTURE(procs);
    Unwinding u;
    CHECK(run_fibers(procs, [&] {
            gc_fiber* w = gc_go(watch_uncaught, &u);
            gc_fiber* f = gc_go(unwind_with_yield, &u);
            if (f) gc_join(f);
            if (w) gc_join(w);
          }) == 0);
    CHECK(u.in_destructor[0] == 1);
    CHECK(u.in_destructor[1] == 1);
    CHECK(u.after == 0);
    CHECK(u.other_max == 0);
  }
}
