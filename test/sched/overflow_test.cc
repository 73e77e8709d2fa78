// Fiber stack overflow reporting (lib/sched/overflow.cc): an overflow says so before the
// process dies by SIGSEGV; any other fault is left to the handler installed before, or to
// the default action. Each fault happens in a child process (child.h). Not under ASan or
// TSan, whose own handlers report the fault (and end the process by exit, not SIGSEGV).
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "gc/collector.h"
#include "sched/child.h"
#include "sched/fibers.h"
#include "sched/sched.h"
#include "tricolor/fiber.h"

using namespace tricolor::test;
using namespace tricolor::internal;

namespace {

constexpr const char* kMessage = "tricolor: fiber stack overflow (the fiber's stack is ";

// Deeper than any fiber stack holds; volatile, so the compiler cannot see the recursion
// never ends.
volatile int g_depth_limit = 1 << 30;

// A frame of about 512 bytes per call that the compiler can neither drop nor turn into a
// loop: the buffer is used after the recursive call returns.
[[gnu::noinline]] int recurse(int depth) {
  volatile char buf[512];
  buf[0] = static_cast<char>(depth);
  if (depth >= g_depth_limit) return depth;
  int r = recurse(depth + 1);
  asm volatile("" ::: "memory");
  return r + buf[0];
}

// A page the test maps PROT_NONE itself: a fault there lies in no fiber stack's guard.
volatile char* protected_page() {
  void* p = mmap(nullptr, static_cast<size_t>(sysconf(_SC_PAGESIZE)), PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) abort();
  return static_cast<volatile char*>(p);
}

void prior_handler(int, siginfo_t* info, void*) {
  const char msg[] = "the previous SIGSEGV handler ran\n";
  write(STDERR_FILENO, msg, sizeof msg - 1);
  // 42 only with the fault's own siginfo: the handler was called as installed.
  _exit(info->si_signo == SIGSEGV ? 42 : 43);
}

}  // namespace

// Run by the cases below in a child process.
TEST_CASE("child: a fiber recurses without bound", "[.][sched][overflow][child]") {
  ensure_heap();
  fprintf(stderr, "fiber stack size %zu\n", stack_mem_round(configured_fiber_stack_size()));
  run_fibers(2, [] { fprintf(stderr, "%d\n", recurse(0)); });
  fprintf(stderr, "gc_run returned\n");
}

namespace {
// A fiber writes to a page mapped PROT_NONE: a fault outside any guard page.
void fault_on_a_fiber() {
  run_fibers(2, [] {
    volatile char* p = protected_page();
    p[0] = 1;
  });
  fprintf(stderr, "gc_run returned\n");
}
}  // namespace

TEST_CASE("child: a fiber writes to a page mapped PROT_NONE", "[.][sched][overflow][child]") {
  fault_on_a_fiber();
}

TEST_CASE("child: a fiber faults under a SIGSEGV handler installed before gc_run",
          "[.][sched][overflow][child]") {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = prior_handler;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, nullptr);
  fault_on_a_fiber();
}

TEST_CASE("a fiber stack overflow says so and the process dies by SIGSEGV",
          "[sched][overflow]") {
  if (!overflow_reporting()) return;
  ensure_heap();
  ChildCase r = run_case_in_child("child: a fiber recurses without bound", 120);
  INFO(r.output);
  CHECK_FALSE(r.gave_up);
  CHECK(r.signal == SIGSEGV);
  size_t at = r.output.find(kMessage);
  REQUIRE(at != std::string::npos);
  // The size it names is the size the fiber had.
  std::string size = std::to_string(stack_mem_round(configured_fiber_stack_size()));
  CHECK(r.output.compare(at + strlen(kMessage), size.size() + 7, size + " bytes;") == 0);
  CHECK(r.output.find("raise gc_options.fiber_stack_size)\n") != std::string::npos);
  CHECK(r.output.find("gc_run returned") == std::string::npos);
}

TEST_CASE("a fault outside any fiber stack's guard dies by SIGSEGV without the message",
          "[sched][overflow]") {
  if (!overflow_reporting()) return;
  ChildCase r = run_case_in_child("child: a fiber writes to a page mapped PROT_NONE", 120);
  INFO(r.output);
  CHECK_FALSE(r.gave_up);
  CHECK(r.signal == SIGSEGV);
  CHECK(r.output.find("fiber stack overflow") == std::string::npos);
  CHECK(r.output.find("gc_run returned") == std::string::npos);
}

TEST_CASE("a fault outside any fiber stack's guard goes to the handler installed before",
          "[sched][overflow]") {
  if (!overflow_reporting()) return;
  ChildCase r = run_case_in_child(
      "child: a fiber faults under a SIGSEGV handler installed before gc_run", 120);
  INFO(r.output);
  CHECK_FALSE(r.gave_up);
  CHECK(r.exit_code == 42);
  CHECK(r.output.find("the previous SIGSEGV handler ran") != std::string::npos);
  CHECK(r.output.find("fiber stack overflow") == std::string::npos);
}
