// The scheduler core (lib/sched/proc.cc): spawning and joining, yielding, work stealing,
// sleeping, misuse.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <string>
#include <cstdio>
#include <thread>
#include <vector>

#include "api/capture.h"
#include "os/clock.h"
#include "os/stack.h"
#include "sched/child.h"
#include "sched/fibers.h"
#include "sched/sched.h"
#include "tricolor/fiber.h"
#include "tricolor/gc.h"

using namespace tricolor::test;
using namespace tricolor::internal;

namespace {

void count_up(void* a) { static_cast<std::atomic<int>*>(a)->fetch_add(1, std::memory_order_relaxed); }

// Spawns fibers that yield until *stop, at most `most`, until gc_go refuses one; they go into
// fs. Returns whether gc_go refused.
bool spawn_until_refused(std::atomic<bool>* stop, int most, std::vector<gc_fiber*>* fs) {
  auto spin = [](void* a) {
    while (!static_cast<std::atomic<bool>*>(a)->load()) gc_yield();
  };
  while (int(fs->size()) < most) {
    gc_fiber* g = gc_go(spin, stop);
    if (!g) return true;
    fs->push_back(g);
  }
  return false;
}

}  // namespace

TEST_CASE("100k fibers (fewer under sanitizers) are spawned and joined and their stacks reused", "[sched][proc]") {
  const int total = scaled(100000);  // TSan makes each fiber switch ~100x dearer
  const int wave = 2500;  // divides both totals; alive at once: two kernel mappings per stack (os/stack.h)
  std::atomic<int> ran{0};
  int joined = 0, failed_spawns = 0;
  uint64_t stacks_before = 0, stacks_after = 0;
  ensure_heap();
  gc_stats s0;
  gc_read_stats(&s0);
  stacks_before = s0.stacks;
  int rc = run_fibers(0, [&] {
    std::vector<gc_fiber*> fs;
    fs.reserve(wave);
    for (int done = 0; done < total; done += wave) {
      fs.clear();
      for (int i = 0; i < wave; i++) {
        gc_fiber* f = gc_go(count_up, &ran);
        if (f) fs.push_back(f);
        else failed_spawns++;
      }
      for (gc_fiber* f : fs) {
        gc_join(f);
        joined++;
      }
    }
  });
  gc_stats s1;
  gc_read_stats(&s1);
  stacks_after = s1.stacks;
  CHECK(rc == 0);
  CHECK(failed_spawns == 0);
  CHECK(ran.load() == total);
  CHECK(joined == total);
  // Every fiber stack was unregistered when its fiber died.
  CHECK(stacks_after == stacks_before);
  CHECK(stack_mem_mapped() == 0);  // the pool is released at the end of gc_run
}

TEST_CASE("two fibers on one P alternate at every yield", "[sched][proc]") {
  struct PingPong {
    std::atomic<int> turn{0};
    int rounds = 0;
    std::atomic<long> yields{0};
    std::vector<int> log;  // sides in the order they played
    std::atomic<bool> gave_up{false};
  } pp;
  pp.rounds = scaled(20000);
  struct Player {
    PingPong* pp;
    int side;
  };
  auto play = [](void* a) {
    auto* pl = static_cast<Player*>(a);
    PingPong* pp = pl->pp;
    for (int r = 0; r < pp->rounds; r++) {
      long spins = 0;
      while (pp->turn.load(std::memory_order_acquire) != pl->side) {
        gc_yield();
        pp->yields.fetch_add(1, std::memory_order_relaxed);
        if (++spins > 1000000) {
          pp->gave_up = true;
          return;
        }
      }
      pp->log.push_back(pl->side);
      pp->turn.store(1 - pl->side, std::memory_order_release);
    }
  };
  Player a{&pp, 0}, b{&pp, 1};
  int rc = run_fibers(1, [&] {
    gc_fiber* fa = gc_go(play, &a);
    gc_fiber* fb = gc_go(play, &b);
    gc_join(fa);
    gc_join(fb);
  });
  REQUIRE(rc == 0);
  REQUIRE_FALSE(pp.gave_up.load());
  REQUIRE(pp.log.size() == size_t(2 * pp.rounds));
  for (size_t i = 0; i < pp.log.size(); i++) REQUIRE(pp.log[i] == int(i % 2));
  // With one P every yield switches to the other fiber, which then plays at once: about
  // one yield per move (a couple more at start and end).
  CHECK(pp.yields.load() <= 2L * pp.rounds + 4);
}

TEST_CASE("work stealing spreads fibers over every P", "[sched][proc]") {
  constexpr int kProcs = 4;
  const int nfibers = 64;
  std::atomic<int> ran_on[kProcs] = {};
  std::atomic<int> bad_p{0};
  struct Ctx {
    std::atomic<int>* ran_on;
    std::atomic<int>* bad_p;
  } ctx{ran_on, &bad_p};
  auto work = [](void* a) {
    auto* c = static_cast<Ctx*>(a);
    uint64_t end = monotonic_ns() + 2000000;  // ~2 ms of CPU
    volatile uint64_t x = 0;
    while (monotonic_ns() < end) {
      for (int i = 0; i < 1000; i++) x = x + i;
      gc_safepoint();
    }
    int p = sched_current_p();
    if (p < 0 || p >= kProcs) c->bad_p->fetch_add(1);
    else c->ran_on[p].fetch_add(1);
  };
  int rc = run_fibers(kProcs, [&] {
    std::vector<gc_fiber*> fs;
    for (int i = 0; i < nfibers; i++) fs.push_back(gc_go(work, &ctx));
    for (gc_fiber* f : fs) gc_join(f);
  });
  REQUIRE(rc == 0);
  CHECK(bad_p.load() == 0);
  REQUIRE(sched_procs() == kProcs);
  uint64_t steals = 0;
  int sum = 0;
  for (int i = 0; i < kProcs; i++) {
    INFO("P " << i << ": " << ran_on[i].load() << " fibers finished, "
              << sched_p_stats(i).fibers_run << " switched to, " << sched_p_stats(i).steals
              << " steals");
    // Every P ran fibers. Where each fiber finished is shown but not required per P: on a
    // loaded machine sysmon preempts fibers that run 10 ms, and a P whose thread got
    // little CPU may see its fibers finish on another P (seen under TSan).
    CHECK(sched_p_stats(i).fibers_run > 0);
    steals += sched_p_stats(i).steals;
    sum += ran_on[i].load();
  }
  CHECK(sum == nfibers);
  CHECK(steals > 0);  // all were spawned on the main fiber's P: the others had to steal
}

TEST_CASE("gc_sleep parks a fiber for at least the time asked", "[sched][proc]") {
  std::atomic<int> early{0}, woke{0};
  const int n = 50;
  int rc = run_fibers(0, [&] {
    struct Ctx {
      std::atomic<int>* early;
      std::atomic<int>* woke;
      uint64_t ns;
    };
    std::vector<Ctx> cs(n);
    std::vector<gc_fiber*> fs;
    for (int i = 0; i < n; i++) {
      cs[i] = Ctx{&early, &woke, uint64_t(1 + i % 10) * 1000000};
      fs.push_back(gc_go([](void* a) {
        auto* c = static_cast<Ctx*>(a);
        uint64_t t0 = monotonic_ns();
        gc_sleep(c->ns);
        if (monotonic_ns() - t0 < c->ns) c->early->fetch_add(1);
        c->woke->fetch_add(1);
      }, &cs[i]));
    }
    for (gc_fiber* f : fs) gc_join(f);
  });
  REQUIRE(rc == 0);
  CHECK(woke.load() == n);
  CHECK(early.load() == 0);
}

TEST_CASE("a plain thread joins a fiber and gc_sleep outside a fiber sleeps the thread",
          "[sched][proc]") {
  std::atomic<bool> joined{false}, dead_before_join{false};
  std::atomic<bool> fiber_done{false};
  int rc = run_fibers(0, [&] {
    gc_fiber* f = gc_go([](void* a) {
      gc_sleep(20000000);
      static_cast<std::atomic<bool>*>(a)->store(true);
    }, &fiber_done);
    std::thread th([&] {
      gc_sleep(1000000);  // not a fiber: a thread sleep
      gc_join(f);
      dead_before_join = fiber_done.load();
      joined = true;
    });
    gc_blocking_begin();  // waiting for a thread is a blocking wait
    th.join();
    gc_blocking_end();
  });
  REQUIRE(rc == 0);
  CHECK(joined.load());
  CHECK(dead_before_join.load());
}

TEST_CASE("misuse of the fiber API is reported and harmless", "[sched][proc]") {
  ensure_heap();
  CHECK(gc_go(count_up, nullptr) == nullptr);  // outside gc_run
  CHECK(gc_fiber_self() == nullptr);
  gc_join(nullptr);                            // a message, nothing else
  CHECK(gc_run(nullptr, nullptr) == -1);
  int nested_rc = 0, self_ok = 0;
  std::atomic<int> ran{0};
  int rc = run_fibers(0, [&] {
    nested_rc = gc_run([](void*) {}, nullptr);  // gc_run does not nest
    self_ok = gc_fiber_self() != nullptr;
    gc_join(gc_fiber_self());                   // joining oneself: a message
    gc_fiber* f = gc_go(count_up, &ran);
    gc_join(f);
    gc_join(f);                                 // already joined: a message
    gc_join(nullptr);
    gc_go(count_up, &ran);                      // never joined: released by gc_run
  });
  CHECK(rc == 0);
  CHECK(nested_rc == -1);
  CHECK(self_ok == 1);
  CHECK(ran.load() == 2);
  // The scheduler is usable again after all that.
  CHECK(run_fibers(0, [&] { gc_join(gc_go(count_up, &ran)); }) == 0);
  CHECK(ran.load() == 3);
}

namespace {

void leave_blocking_open(void*) {
  gc_blocking_begin();
  gc_blocking_begin();
}

}  // namespace

// Run by the case below in a child process: without the scheduler closing the regions, the
// collection waits for the dead fiber's thread forever.
TEST_CASE("child: a fiber returns inside two blocking regions and the main fiber collects",
          "[.][sched][proc][child]") {
  ensure_heap();
  for (int procs : {1, 2}) {
    int rc = run_fibers(procs, [] {
      gc_fiber* f = gc_go(leave_blocking_open, nullptr);
      if (f) gc_join(f);
      gc_collect();
    });
    fprintf(stderr, "procs %d: gc_run returned %d after the collection\n", procs, rc);
  }
}

TEST_CASE("a fiber that returns inside a blocking region has it closed with a message",
          "[sched][proc]") {
  ChildCase r = run_case_in_child(
      "child: a fiber returns inside two blocking regions and the main fiber collects", 120);
  INFO(r.output);
  CHECK_FALSE(r.gave_up);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("a fiber returned inside gc_blocking_begin/end (2 unclosed): closed") !=
        std::string::npos);
  CHECK(r.output.find("procs 1: gc_run returned 0 after the collection") != std::string::npos);
  CHECK(r.output.find("procs 2: gc_run returned 0 after the collection") != std::string::npos);
}

// Run by the case below in a child process: the address-space limit is the child's alone.
TEST_CASE("child: gc_go under an address-space limit until it returns NULL",
          "[.][sched][proc][child]") {
  ensure_heap();
  std::atomic<bool> stop{false};
  int spawned = 0, refused = 0;
  int rc = run_fibers(1, [&] {
    // Room for a few hundred more fiber stacks, far fewer than the fibers asked for.
    unsigned long pages = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%lu", &pages) != 1) return;
    fclose(f);
    rlimit lim{};
    lim.rlim_cur = lim.rlim_max = pages * sysconf(_SC_PAGESIZE) + (64 << 20);
    if (setrlimit(RLIMIT_AS, &lim) != 0) return;
    std::vector<gc_fiber*> fs;
    fs.reserve(100000);
    refused += spawn_until_refused(&stop, 100000, &fs);
    spawned = int(fs.size());
    stop.store(true);
    for (gc_fiber* g : fs) gc_join(g);
  });
  fprintf(stderr, "gc_run returned %d; %d fibers spawned, %d refused\n", rc, spawned, refused);
}

TEST_CASE("gc_go says that it returns NULL when a fiber stack cannot be mapped",
          "[sched][proc]") {
  // The sanitizers' own allocators map memory the limit leaves no room for.
  if (kSanitizerScale > 1) return;
  ChildCase r = run_case_in_child("child: gc_go under an address-space limit until it returns NULL", 120);
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("gc_go: no stack could be mapped for the new fiber") != std::string::npos);
  CHECK(r.output.find("gc_go returns NULL") != std::string::npos);
  CHECK(r.output.find(", 1 refused") != std::string::npos);
}

namespace {
void block_briefly(void* a) {
  gc_blocking_begin();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  gc_blocking_end();
  static_cast<std::atomic<int>*>(a)->fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// A worker thread that cannot be started (pthread_create's EAGAIN under a thread limit)
// leaves its P idle, with a message: the exception of std::thread ended the process
// (std::terminate from sysmon's retake of a blocked fiber's P). The fibers all run.
TEST_CASE("a worker thread that cannot be started leaves its P idle, with a message",
          "[sched][proc]") {
  ensure_heap();
  capture c;
  REQUIRE(capture_begin(&c) == 0);
  test_fail_new_ms(1 << 20);  // every new worker thread fails
  uint64_t failed0 = sched_failed_ms();
  std::atomic<int> done{0};
  int rc = run_fibers(2, [&] {
    std::vector<gc_fiber*> fs;
    for (int i = 0; i < 20; i++) fs.push_back(gc_go(block_briefly, &done));
    for (gc_fiber* f : fs)
      if (f) gc_join(f);
  });
  test_fail_new_ms(0);
  char text[8192];
  capture_end(&c, text, sizeof text);
  INFO("captured: " << text);
  CHECK(rc == 0);
  CHECK(done.load() == 20);
  CHECK(sched_threads() == 1);  // the caller alone
  CHECK(sched_failed_ms() > failed0);
  CHECK(std::string(text).find("cannot start a fiber worker thread") != std::string::npos);
  // Threads start again once they can.
  done = 0;
  rc = run_fibers(2, [&] {
    std::vector<gc_fiber*> fs;
    for (int i = 0; i < 20; i++) fs.push_back(gc_go(block_briefly, &done));
    for (gc_fiber* f : fs)
      if (f) gc_join(f);
  });
  CHECK(rc == 0);
  CHECK(done.load() == 20);
  CHECK(sched_threads() >= 2);
}

// gc_go refuses a stack before the process runs out of memory mappings (two per fiber stack,
// vm.max_map_count in all): at the limit itself every later mapping failed, and the next
// collection aborted inside mimalloc. Here the stacks' budget is set low; past it gc_go
// returns NULL with a message, and collections and allocation go on.
TEST_CASE("gc_go returns NULL at the fiber stacks' share of the mappings, and the heap goes on",
          "[sched][proc]") {
  ensure_heap();
  capture c;
  REQUIRE(capture_begin(&c) == 0);
  std::atomic<bool> stop{false};
  int spawned = 0, refused = 0;
  bool heap_ok = false;
  int rc = run_fibers(1, [&] {
    test_set_stack_map_budget(stack_mem_mapped() + 40);
    std::vector<gc_fiber*> fs;
    refused += spawn_until_refused(&stop, 1000, &fs);
    spawned = int(fs.size());
    gc_collect();
    void* p = gc_alloc(64, nullptr);
    void* q = gc_alloc_noscan(1 << 20);
    heap_ok = p && q;
    stop.store(true);
    for (gc_fiber* g : fs) gc_join(g);
    test_set_stack_map_budget(0);
  });
  char text[8192];
  capture_end(&c, text, sizeof text);
  INFO("captured: " << text);
  CHECK(rc == 0);
  CHECK(refused == 1);
  CHECK(spawned >= 40);
  CHECK(spawned < 1000);
  CHECK(heap_ok);
  CHECK(std::string(text).find("cannot map another fiber stack") != std::string::npos);
  CHECK(std::string(text).find("gc_go returns NULL") != std::string::npos);
}
