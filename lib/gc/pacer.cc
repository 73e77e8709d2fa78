// The pacer: see pacer.h.
#include "gc/pacer.h"

#include <algorithm>

namespace tricolor::internal {

void Pacer::commit(uint64_t marked, uint64_t stacks, uint64_t globals, uint64_t scan_work) {
  heap_marked = marked;
  stack_bytes = stacks;
  globals_bytes = globals;
  last_scan_work = scan_work;
  uint64_t g = kNoGoal;
  if (gc_percent >= 0) {
    g = marked + (marked + stacks + globals) * uint64_t(gc_percent) / 100;
    g = std::max(g, kHeapMinimum);
  }
  if (memory_limit) {
    uint64_t headroom = std::max<uint64_t>(memory_limit * 3 / 100, 1 << 20);
    uint64_t lg = memory_limit > headroom ? memory_limit - headroom : memory_limit / 2;
    g = std::min(g, lg);
  }
  goal = g;
  if (g == kNoGoal) {
    trigger = kNoGoal;
    return;
  }
  if (g <= marked) {  // at or over the limit: collect as soon as anything is allocated
    trigger = marked;
    return;
  }
  double u = kGoalUtilization;
  // scan_work is all of the last cycle's scanning: heap objects, stacks and roots (Go's
  // heapScan + stackScan + globalsScan).
  double runway = cons_mark * (1 - u) / u * double(scan_work);
  uint64_t span = g - marked;
  uint64_t min_trigger = marked + span / 64 * 45;
  uint64_t max_trigger = marked + span / 64 * 61;
  if (g > kHeapMinimum && g - kHeapMinimum > max_trigger) max_trigger = g - kHeapMinimum;
  max_trigger = std::max(max_trigger, min_trigger);
  uint64_t t = runway >= double(g) ? min_trigger : g - uint64_t(runway);
  trigger = std::clamp(t, min_trigger, max_trigger);
}

void Pacer::end_cycle(uint64_t alloc_bytes, uint64_t scan_work, double u) {
  if (scan_work == 0) return;
  u = std::clamp(u, 0.05, 0.95);
  // Go's consMark: allocation rate over scan rate, normalised by the CPU split.
  double cm = double(alloc_bytes) / double(scan_work) * (u / (1 - u));
  // Smooth, but react to a faster mutator at once (Go keeps the max of 4 samples).
  cons_mark = std::clamp(std::max(cm, 0.5 * cons_mark + 0.5 * cm), 0.05, 20.0);
}

uint64_t Pacer::expected_scan_work() const {
  return std::max<uint64_t>(last_scan_work, 1 << 20);
}

double Pacer::assist_ratio_for(uint64_t goal, uint64_t expected, uint64_t heap_live,
                               uint64_t scan_done) {
  if (goal == kNoGoal) return 0;
  // Near or past the expected work the true remainder is unknown; a ratio that fell to
  // zero there let a mutator allocate freely past the goal while the mark went on. So, as
  // Go does (scanWorkExpected becomes the whole scannable heap once exceeded), the whole
  // live heap is expected once the expected work is done, and at least a tenth of the
  // expected work is always assumed left. Without it a cycle with no history (the 1 MiB
  // floor) on a large live heap let the mutator run far past the goal on a loaded machine.
  if (scan_done >= expected) expected = std::max(expected, heap_live);
  uint64_t remaining_work = std::max(expected > scan_done ? expected - scan_done : 0, expected / 10);
  uint64_t remaining_heap = goal > heap_live ? goal - heap_live : 0;
  remaining_heap = std::max<uint64_t>(remaining_heap, 64 << 10);
  return double(remaining_work) / double(remaining_heap);
}

}  // namespace tricolor::internal
