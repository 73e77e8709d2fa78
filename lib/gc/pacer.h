// The pacer: when to start a cycle and how much marking allocating mutators owe.
// A plain value with no heap behind it, so tests drive it through scenario tables
// (test/gc/pacer_test.cc). Formulas from Go 1.18+ (reference/go-runtime-facts.md §7):
//
//   goal      = marked + (marked + stacks + globals) * GOGC/100, at least 4 MiB
//               (DESIGN.md fixes the 4 MiB floor); GOGC < 0: no goal (no automatic cycle)
//   limit     = memory_limit - max(3% of it, 1 MiB)         (Go's headroom), caps the goal
//   runway    = cons_mark * (1-u)/u * last scan work, u = 0.25 (the work: heap objects,
//               stacks and roots, all scanned by the same loop and counted together)
//   trigger   = clamp(goal - runway, marked + 0.70*(goal-marked),
//                     max(marked + 0.95*(goal-marked), goal - 4 MiB))
//   assist    = remaining expected scan work / remaining heap before the goal
#pragma once

#include <cstdint>

namespace tricolor::internal {

inline constexpr uint64_t kHeapMinimum = 4 << 20;
inline constexpr double kGoalUtilization = 0.25;

struct Pacer {
  int gc_percent = 100;
  uint64_t memory_limit = 0;  // 0: none

  // Results of the last commit.
  uint64_t heap_marked = 0;
  uint64_t goal = kHeapMinimum;
  uint64_t trigger = kHeapMinimum * 61 / 64;  // Go's first-cycle trigger, 0.95 of the goal
  // Measurements carried from cycle to cycle.
  uint64_t last_scan_work = 0;
  uint64_t stack_bytes = 0;
  uint64_t globals_bytes = 0;
  double cons_mark = 1.0;

  static constexpr uint64_t kNoGoal = UINT64_MAX;

  // After mark termination: the live heap is `marked`, `stacks` and `globals` the bytes of
  // stack and of registered roots the cycle scanned, `scan_work` all it scanned (those
  // included); computes goal and trigger.
  void commit(uint64_t marked, uint64_t stacks, uint64_t globals, uint64_t scan_work);
  // Recomputes goal and trigger after a setting changed (gc_percent, memory_limit).
  void recompute() { commit(heap_marked, stack_bytes, globals_bytes, last_scan_work); }
  // Measures the mutators' allocation against the marking speed of the cycle that ended:
  // alloc_bytes allocated while scanning scan_work bytes, with utilisation u of the CPUs.
  void end_cycle(uint64_t alloc_bytes, uint64_t scan_work, double u);
  // Bytes of scan work an allocating mutator owes per byte it allocates now.
  double assist_ratio(uint64_t heap_live, uint64_t scan_done) const {
    return assist_ratio_for(goal, expected_scan_work(), heap_live, scan_done);
  }
  // The same from copies of goal and expected_scan_work(), for callers without the lock.
  static double assist_ratio_for(uint64_t goal, uint64_t expected, uint64_t heap_live,
                                 uint64_t scan_done);
  // The scan work this cycle is expected to do (the last cycle's, stacks and roots
  // included, at least 1 MiB).
  uint64_t expected_scan_work() const;
  bool should_trigger(uint64_t heap_live) const { return goal != kNoGoal && heap_live >= trigger; }
};

}  // namespace tricolor::internal
