// Check-mark mode: after mark termination, with the world stopped, re-marks the heap from
// the roots into separate bits and checks that every object reached is marked (Go's
// gccheckmark). See checkmark.cc.
//
// On with TRICOLOR_CHECKMARK=1 in the environment (read once), or set_checkmark(true).
// A miss is reported (the object, its span class, the path's last edge: the holder and
// the field offset, or the root) and aborts the process: a reachable object left white
// would be freed by the sweep that follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tricolor::internal {

// True when the mode is on (environment or set_checkmark).
bool checkmark_enabled();
void set_checkmark(bool on);
// TRICOLOR_CHECKMARK=strict (or set_checkmark_strict): stack words count as strictly as
// registered roots (see checkmark.cc for why that can report a stale word).
void set_checkmark_strict(bool on);

struct CheckmarkResult {
  uint64_t reached = 0;          // objects reached from the roots
  uint64_t missed = 0;           // reached but not marked: collector bugs
  uint64_t stack_ambiguous = 0;  // unmarked objects named only by a stack word (not strict)
};
// Runs the check (world stopped, after mark termination, before sweeping starts).
// Reports and aborts on a miss unless abort_on_miss is false (tests of the checker).
CheckmarkResult checkmark_heap(bool abort_on_miss = true);
// Checks run and objects reached so far (tests, torture summaries).
uint64_t checkmark_runs();
uint64_t checkmark_reached_total();

// Retention probe (tests): after each mark while set, for each of the n objects (given as
// address ^ mask, so the caller need not hold their addresses) that is marked, the words
// that point into it (registered roots, stacks, tiny blocks, marked heap objects) are
// recorded; retention_probe_report returns those of the last mark. n = 0 turns it off.
void set_retention_probe(const uintptr_t* hidden, size_t n, uintptr_t mask);
std::vector<std::string> retention_probe_report();
void run_retention_probe();  // the collector calls it at mark termination (world stopped)

}  // namespace tricolor::internal
