// The pacer as a value: scenario tables, no heap.
#include <catch2/catch.hpp>

#include "gc/pacer.h"

using tricolor::internal::Pacer;
using tricolor::internal::kHeapMinimum;

TEST_CASE("the heap goal follows GOGC with a 4 MiB floor", "[gc][pacer]") {
  struct Row {
    int gogc;
    uint64_t marked;
    uint64_t goal;
  } rows[] = {
      {100, 0, kHeapMinimum},
      {100, 1 << 20, kHeapMinimum},
      {100, 100 << 20, 200 << 20},
      {50, 100 << 20, 150 << 20},
      {200, 100 << 20, 300 << 20},
      {0, 100 << 20, 100 << 20},
  };
  for (auto& r : rows) {
    Pacer p;
    p.gc_percent = r.gogc;
    p.commit(r.marked, 0, 0, r.marked);
    CAPTURE(r.gogc, r.marked);
    REQUIRE(p.goal == r.goal);
  }
}

TEST_CASE("GOGC off means no goal and no trigger", "[gc][pacer]") {
  Pacer p;
  p.gc_percent = -1;
  p.commit(100 << 20, 0, 0, 100 << 20);
  REQUIRE(p.goal == Pacer::kNoGoal);
  REQUIRE(!p.should_trigger(uint64_t(1) << 50));
}

TEST_CASE("the memory limit caps the goal, leaving Go's headroom", "[gc][pacer]") {
  Pacer p;
  p.gc_percent = 100;
  p.memory_limit = 100 << 20;
  p.commit(80 << 20, 0, 0, 80 << 20);
  REQUIRE(p.goal == (100 << 20) - (100 << 20) * 3 / 100);
  p.gc_percent = -1;  // off, but the limit still drives cycles
  p.recompute();
  REQUIRE(p.goal == (100 << 20) - (100 << 20) * 3 / 100);
  REQUIRE(p.should_trigger(p.goal));
}

TEST_CASE("the trigger stays between 70% and 95% of the runway to the goal", "[gc][pacer]") {
  for (double cons : {0.01, 0.5, 1.0, 5.0, 20.0}) {
    Pacer p;
    p.cons_mark = cons;
    p.commit(200 << 20, 0, 0, 200 << 20);
    uint64_t span = p.goal - p.heap_marked;
    CAPTURE(cons);
    REQUIRE(p.trigger >= p.heap_marked + span / 64 * 45);
    REQUIRE(p.trigger <= std::max(p.heap_marked + span / 64 * 61, p.goal - kHeapMinimum));
  }
}

TEST_CASE("a faster mutator moves the trigger earlier", "[gc][pacer]") {
  Pacer slow, fast;
  slow.end_cycle(1 << 20, 100 << 20, 0.25);
  fast.end_cycle(400 << 20, 100 << 20, 0.25);
  slow.commit(400 << 20, 0, 0, 20 << 20);
  fast.commit(400 << 20, 0, 0, 20 << 20);
  REQUIRE(fast.cons_mark > slow.cons_mark);
  REQUIRE(fast.trigger < slow.trigger);
}

TEST_CASE("assists owe more work per byte as the heap nears its goal", "[gc][pacer]") {
  Pacer p;
  p.commit(100 << 20, 0, 0, 100 << 20);
  double early = p.assist_ratio(p.heap_marked + (10 << 20), 10 << 20);
  double late = p.assist_ratio(p.goal - (2 << 20), 10 << 20);
  REQUIRE(early > 0);
  REQUIRE(late > early);
}

// Stacks and registered roots raise the goal (Go 1.18+: goal = marked + (marked + stackScan +
// globalsScan) * GOGC/100), and are part of the scan work the cycle measured, not added to it a
// second time for the runway or the assists' expected work.
TEST_CASE("stack and root bytes raise the goal and count once in the expected work",
          "[gc][pacer]") {
  Pacer p;
  p.commit(100 << 20, 20 << 20, 10 << 20, 130 << 20);
  CHECK(p.goal == (100u << 20) + (130u << 20));
  CHECK(p.expected_scan_work() == 130u << 20);
  Pacer q;  // the same cycle without stacks and roots: a lower goal, the same trigger margin
  q.commit(100 << 20, 0, 0, 130 << 20);
  CHECK(q.goal == 200u << 20);
  CHECK(p.goal - p.trigger >= q.goal - q.trigger);
}
