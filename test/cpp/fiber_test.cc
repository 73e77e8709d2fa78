// go / fiber / run: the C++ wrappers over fiber.h.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "support.h"
#include "tricolor/gc.hpp"

using namespace tricolor::cpptest;
using tricolor::member;

namespace {
// A list held only by the capture of a fiber's callable.
ListNode* make_list(int n) {
  ListNode* head = nullptr;
  for (int i = 0; i < n; i++) {
    ListNode* x = tricolor::make<ListNode>();
    x->value = i;
    x->next = head;
    head = x;
  }
  return head;
}
}  // namespace

TEST_CASE("go runs callables on fibers and join waits for each", "[cpp][fiber]") {
  ensure_heap();
  std::atomic<long> sum{0};
  int rc = tricolor::run([&] {
    std::vector<tricolor::fiber> fs;
    for (int i = 1; i <= 100; i++) fs.push_back(tricolor::go([&sum, i] { sum += i; }));
    for (auto& f : fs) {
      REQUIRE(f.joinable());
      f.join();
      REQUIRE(!f.joinable());
    }
  });
  REQUIRE(rc == 0);
  REQUIRE(sum == 5050);
}

TEST_CASE("heap objects captured by a fiber's callable survive collections before it runs",
          "[cpp][fiber]") {
  ensure_heap();
  // Each callable captures the only reference to a list; collections run between the
  // spawns and while the fibers yield, so the capture must be traced (go's rooted box, then
  // the fiber's stack).
  std::atomic<long> bad{0};
  int rc = tricolor::run([&] {
    std::vector<tricolor::fiber> fs;
    for (int i = 0; i < 50; i++) {
      ListNode* list = make_list(200);
      fs.push_back(tricolor::go([list, &bad] {
        tricolor::yield();
        long s = 0, n = 0;
        for (ListNode* p = list; p; p = p->next) s += p->value, n++;
        if (n != 200 || s != 199 * 200 / 2) bad++;
      }));
      if (i % 10 == 0) gc_collect();
    }
    gc_collect();
    for (auto& f : fs) f.join();
  });
  REQUIRE(rc == 0);
  REQUIRE(bad == 0);
}

TEST_CASE("a fiber handle moves, and a fiber nobody joins still runs to completion",
          "[cpp][fiber]") {
  ensure_heap();
  std::atomic<int> ran{0};
  int rc = tricolor::run([&] {
    tricolor::fiber a = tricolor::go([&] { ran++; });
    tricolor::fiber b = std::move(a);
    REQUIRE(!a.joinable());
    REQUIRE(b.joinable());
    b.join();
    (void)tricolor::go([&] {
      tricolor::sleep_for(std::chrono::milliseconds(1));
      ran++;
    });  // dropped: released when run returns
  });
  REQUIRE(rc == 0);
  REQUIRE(ran == 2);
}

TEST_CASE("go outside run reports the misuse", "[cpp][fiber]") {
  ensure_heap();
  REQUIRE_THROWS_AS(tricolor::go([] {}), std::logic_error);
  tricolor::fiber empty;
  REQUIRE_THROWS_AS(empty.join(), std::logic_error);
}

// sleep_for as std::this_thread::sleep_for: zero or a negative duration returns at once (a
// negative count cast to uint64_t slept for 292 years), on a plain thread and on a fiber.
TEST_CASE("sleep_for with a duration of zero or less returns at once", "[cpp][fiber]") {
  ensure_heap();
  auto t0 = std::chrono::steady_clock::now();
  tricolor::sleep_for(std::chrono::milliseconds(-5));
  tricolor::sleep_for(std::chrono::hours(-1));
  tricolor::sleep_for(std::chrono::seconds(0));
  int rc = tricolor::run([] {
    tricolor::sleep_for(std::chrono::nanoseconds(-1));
    tricolor::sleep_for(std::chrono::minutes(-10));
    tricolor::fiber f = tricolor::go([] { tricolor::sleep_for(std::chrono::seconds(-3)); });
    f.join();
  });
  REQUIRE(rc == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30));
}
