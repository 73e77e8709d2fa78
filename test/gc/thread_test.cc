// Stopping the world (lib/gc/thread.cc): a thread that does not reach a safepoint is named,
// and a thread leaving a blocking region waits while the world is stopped.
#include <catch2/catch.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "alloc/mheap.h"
#include "api/capture.h"
#include "gc/collector.h"
#include "gc/stacks.h"
#include "gc/testing.h"
#include "support/heap.h"
#include "tricolor/fiber.h"
#include "tricolor/gc.h"

using namespace tricolor::internal;
using namespace tricolor::test;

namespace {

// What has been written to the captured stderr so far (the capture's file offset is left
// alone: pread).
std::string captured_so_far(const capture& c) {
  fflush(stderr);
  std::string text;
  char buf[4096];
  off_t at = 0;
  for (;;) {
    ssize_t n = pread(fileno(c.file), buf, sizeof buf, at);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return text;
}

uint32_t num_gc() {
  gc_stats s;
  gc_read_stats(&s);
  return s.num_gc;
}

// Waits (inside a blocking region: the collector must not wait for the caller) until
// done() or a generous minute has passed.
template <class F>
bool wait_until(F&& done) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  gc_blocking_begin();
  bool ok = false;
  while (!(ok = done()) && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  gc_blocking_end();
  return ok;
}

}  // namespace

TEST_CASE("a thread that does not reach a safepoint is named, and the stop completes once it "
          "does", "[gc][thread]") {
  ensure_heap();
  // The spinner holds every stop of the world up until this thread releases it: a stress
  // collection of this thread's own (stress builds: at the end of a blocking region) would
  // wait for that stop and never release it (the gc-stress run hung so).
  StressCollectionsHeld no_stress;
  set_stop_warn_ns(100 * 1000000ull);  // 0.1 s instead of 1 s
  std::atomic<bool> release{false}, spinning{false}, collected{false};
  std::atomic<long> tid{0};
  uint32_t gc0 = num_gc();
  // Attached, and spins without a safepoint until released.
  std::thread spinner([&] {
    gc_thread_attach();
    tid = static_cast<long>(syscall(SYS_gettid));
    spinning = true;
    while (!release.load(std::memory_order_acquire)) {
    }
    gc_safepoint();
    gc_thread_detach();
  });
  REQUIRE(wait_until([&] { return spinning.load(); }));
  std::string name = "thread 'tid " + std::to_string(tid.load()) + "'";
  capture c;
  REQUIRE(capture_begin(&c) == 0);
  std::thread collector([&] {  // unattached: gc_collect waits for the cycle
    gc_collect();
    collected = true;
  });
  // Inside one blocking region until the spinner is released: leaving it would wait for
  // the stop, which waits for the spinner.
  gc_blocking_begin();
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool named = false;
  while (!named && std::chrono::steady_clock::now() < give_up) {
    std::string text = captured_so_far(c);
    named = text.find(name) != std::string::npos &&
            text.find("has not reached a safepoint") != std::string::npos;
    if (!named) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  bool collected_early = collected.load();
  release.store(true, std::memory_order_release);
  collector.join();
  spinner.join();
  gc_blocking_end();
  char text[8192];
  capture_end(&c, text, sizeof text);
  set_stop_warn_ns(0);
  INFO("captured: " << text);
  CHECK(named);
  CHECK(std::string(text).find("for 0.1 s") != std::string::npos);
  CHECK_FALSE(collected_early);  // the stop waited for the spinner
  CHECK(collected.load());
  CHECK(num_gc() > gc0);
}

TEST_CASE("a thread leaving a blocking region while the world is stopped waits until it "
          "restarts", "[gc][thread]") {
  ensure_heap();
  std::atomic<bool> in_region{false}, stopped{false}, restarting{false};
  std::atomic<bool> returned_while_stopped{false}, returned{false};
  std::thread blocked([&] {
    gc_thread_attach();
    gc_blocking_begin();
    in_region = true;
    while (!stopped.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    gc_blocking_end();  // must wait for test_start_the_world
    returned_while_stopped = !restarting.load();
    returned = true;
    gc_thread_detach();
  });
  // Stopped and restarted from an unattached thread; the test's own thread is inside a
  // blocking region meanwhile (the stop would wait for it otherwise).
  std::thread stopper([&] {
    while (!in_region.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    test_stop_the_world();
    stopped = true;
    // Give the blocked thread ample occasion to return early, if it wrongly could.
    for (int i = 0; i < 200 && !returned.load(); i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    restarting = true;
    test_start_the_world();
  });
  gc_blocking_begin();
  stopper.join();
  blocked.join();
  gc_blocking_end();
  CHECK(returned.load());
  CHECK_FALSE(returned_while_stopped.load());
}

// Every allocation is a safepoint (lib/alloc/malloc.cc, alloc_polled): a thread that sees a
// stop requested and allocates once, from the span it has cached, parks inside that
// allocation; it does not run on until its next span refill or gc_safepoint.
TEST_CASE("an allocation from a cached span stops for a stop of the world", "[gc][thread]") {
  ensure_heap();
  // Stress builds: the only stop is the test's (a collection started by the allocator's
  // first allocation waited for this thread, which spun below without a safepoint: a hang).
  StressCollectionsHeld no_stress;
  std::atomic<bool> ready{false}, allocated{false}, restarting{false};
  std::atomic<bool> allocated_while_stopped{false};
  std::thread allocator([&] {
    gc_thread_attach();
    (void)gc_alloc(16, nullptr);  // a span of the class is cached now
    ready = true;
    // No safepoint here: wait for the stop request itself.
    while (!(__atomic_load_n(&tricolor_poll_request, __ATOMIC_ACQUIRE) & kPollStopTheWorld)) {
    }
    (void)gc_alloc(16, nullptr);  // must park until the world restarts
    allocated_while_stopped = !restarting.load();
    allocated = true;
    gc_safepoint();  // (without the allocation's safepoint, the stop completes here)
    gc_thread_detach();
  });
  gc_blocking_begin();  // a stop must not wait for this thread while it waits
  while (!ready.load()) std::this_thread::yield();
  gc_blocking_end();
  bool allocated_at_stop = false;
  std::thread stopper([&] {
    test_stop_the_world();
    allocated_at_stop = allocated.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    restarting = true;
    test_start_the_world();
  });
  gc_blocking_begin();  // the stop must not wait for this thread
  stopper.join();
  allocator.join();
  gc_blocking_end();
  CHECK_FALSE(allocated_at_stop);
  CHECK_FALSE(allocated_while_stopped.load());
  CHECK(allocated.load());
}

// A thread woken by a restart of the world must not run on into a stop that begins before
// it leaves its park: park_for_stw publishes "running" first and then looks for a stop
// request again (the other half of stop_the_world's store-then-load). A thread that looked
// first and published after ran mutator code while the collector believed it stopped; the
// verifier then raced with its allocations. The gap is widened to 20 us (a test hook) and
// the stopper restarts and stops again after a varying short delay, so that stops begin
// anywhere in it.
TEST_CASE("a thread woken by a restart does not run into the next stop of the world",
          "[gc][thread]") {
  ensure_heap();
  StressCollectionsHeld no_stress;  // stress builds: only the stopper's stops
  test_set_unpark_delay(20000);
  std::atomic<bool> ready{false}, done{false};
  std::atomic<uint64_t> progress{0};
  std::thread runner([&] {
    gc_thread_attach();
    ready = true;
    while (!done.load(std::memory_order_relaxed)) {
      gc_safepoint();
      progress.fetch_add(1, std::memory_order_relaxed);
    }
    gc_thread_detach();
  });
  while (!ready.load()) std::this_thread::yield();
  int moved = 0, stops = 0, ran = 0;
  std::thread stopper([&] {
    uint64_t seed = 88172645463325252ull, last = 0;
    for (; stops < 2000 && moved == 0; stops++) {
      test_stop_the_world();
      uint64_t before = progress.load(std::memory_order_relaxed);
      ran += before != last;  // the runner ran between the last restart and this stop
      // Longer than the widened gap: a runner that ran into this stop increments meanwhile.
      std::this_thread::sleep_for(std::chrono::microseconds(40));
      last = progress.load(std::memory_order_relaxed);
      if (last != before) moved++;
      test_start_the_world();
      seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
      auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(seed % 30000);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    done = true;
  });
  gc_blocking_begin();  // the stops must not wait for this thread
  stopper.join();
  runner.join();
  gc_blocking_end();
  test_set_unpark_delay(0);
  INFO(stops << " stops, the runner ran before " << ran << " of them");
  CHECK(moved == 0);
  CHECK(ran > 0);
  CHECK(progress.load() > 0);
}

// Growing the heap maps arenas from the OS (60-90 us for 64 MiB) inside a collector wait:
// a stop of the world counts the growing thread as stopped instead of waiting for it. The
// grow hook holds the thread in there until the stopper has stopped the world (at most
// 2 s, so that a regression fails instead of hanging).
TEST_CASE("a thread growing the heap does not hold up a stop of the world", "[gc][thread]") {
  ensure_heap();
  gc_collect();
  static std::atomic<int> state{0};  // 1: a thread is in the grow hook; 2: let it go; 3: gone
  state = 0;
  test_set_grow_hook([] {
    state = 1;
    for (int i = 0; i < 2000 && state.load() == 1; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    state = 3;
  });
  gc_stats s;
  gc_read_stats(&s);
  const size_t big = s.heap_idle + (8 << 20);  // more than every free run: the heap grows
  std::atomic<bool> got{false};
  std::thread grower([&] {
    gc_thread_attach();
    got = gc_alloc_noscan(big) != nullptr;
    gc_thread_detach();
  });
  bool stopped_while_growing = false;
  std::thread stopper([&] {
    while (state.load() != 1) std::this_thread::yield();
    test_stop_the_world();
    stopped_while_growing = state.load() == 1;
    test_start_the_world();
    state = 2;
  });
  gc_blocking_begin();
  stopper.join();
  grower.join();
  gc_blocking_end();
  test_set_grow_hook(nullptr);
  CHECK(stopped_while_growing);
  CHECK(got);
}

// A thread that ends without gc_thread_detach is detached at its exit, with a warning: left
// attached, its record named a thread that no longer exists, and every later stop of the
// world waited for it forever.
TEST_CASE("a thread that ends while attached is detached, and collections go on",
          "[gc][thread]") {
  ensure_heap();
  capture c;
  REQUIRE(capture_begin(&c) == 0);
  long tid = 0;
  std::thread t([&] {
    REQUIRE(gc_thread_attach() == 0);
    tid = static_cast<long>(syscall(SYS_gettid));
    (void)gc_alloc(32, nullptr);
  });  // ends attached
  gc_blocking_begin();
  t.join();
  gc_blocking_end();
  uint32_t gc0 = num_gc();
  std::atomic<bool> done{false};
  std::thread collector([&] {
    gc_collect();
    done = true;
  });
  gc_blocking_begin();  // the collection must not wait for this thread
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!done && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  bool finished = done.load();
  if (finished) collector.join();
  else collector.detach();  // a hang: fail rather than wait forever
  gc_blocking_end();
  char text[8192];
  capture_end(&c, text, sizeof text);
  INFO("captured: " << text);
  REQUIRE(finished);
  CHECK(num_gc() > gc0);
  std::string want = "thread 'tid " + std::to_string(tid) + "' ended while attached";
  CHECK(std::string(text).find(want) != std::string::npos);
}

// gc_shutdown while another thread is attached is refused: it freed that thread's record,
// and the thread's next allocation used the released heap.
TEST_CASE("gc_shutdown while another thread is attached is refused", "[gc][thread]") {
  ensure_heap();
  std::atomic<int> state{0};  // 1: attached and waiting; 2: released
  std::atomic<bool> allocated{false};
  std::thread t([&] {
    REQUIRE(gc_thread_attach() == 0);
    gc_blocking_begin();
    state = 1;
    while (state.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    gc_blocking_end();
    allocated = gc_alloc(32, nullptr) != nullptr;
    gc_thread_detach();
  });
  while (state.load() != 1) {
    gc_safepoint();  // a stop of the world may come meanwhile (stress builds)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  capture c;
  REQUIRE(capture_begin(&c) == 0);
  gc_shutdown();
  char text[4096];
  capture_end(&c, text, sizeof text);
  state = 2;
  gc_blocking_begin();
  t.join();
  gc_blocking_end();
  INFO("captured: " << text);
  CHECK(std::string(text).find("1 other thread(s) are attached") != std::string::npos);
  CHECK(collector_initialized());  // the heap still runs
  CHECK(allocated.load());
  gc_collect();
}

// A fiber runs on a scheduler thread: gc_thread_detach there is refused (it freed the
// thread's record, which the scheduler used at the fiber's next yield).
TEST_CASE("gc_thread_detach on a fiber is refused", "[gc][thread]") {
  ensure_heap();
  capture c;
  REQUIRE(capture_begin(&c) == 0);
  bool attached_after = false;
  int rc = gc_run(
      [](void* a) {
        gc_thread_detach();
        gc_yield();
        *static_cast<bool*>(a) = gc_thread_is_attached() && gc_alloc(32, nullptr) != nullptr;
      },
      &attached_after);
  char text[4096];
  capture_end(&c, text, sizeof text);
  INFO("captured: " << text);
  REQUIRE(rc == 0);
  CHECK(attached_after);
  CHECK(std::string(text).find("gc_thread_detach called on a fiber") != std::string::npos);
}

// The collector's own threads carry names (top -H, gdb): they took the process's name, like
// the program's threads, and nothing told them apart. The program's threads keep theirs.
TEST_CASE("the collector's threads are named, the program's are left alone", "[gc][thread]") {
  ensure_heap();
  gc_collect();  // the workers and the sweeper have run
  std::string own;
  {
    std::ifstream f("/proc/self/comm");
    std::getline(f, own);
  }
  std::multiset<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream f(e.path() / "comm");
    std::string n;
    std::getline(f, n);
    names.insert(n);
  }
  INFO("main thread: " << own);
  CHECK(own.rfind("tricolor-", 0) != 0);
  CHECK(names.count("tricolor-gc") == 1);
  CHECK(names.count("tricolor-mark") >= 1);
  CHECK(names.count("tricolor-sweep") == 1);
}
