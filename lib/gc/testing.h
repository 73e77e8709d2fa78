// Hooks for tests of the collector's interleavings (test/gc/barrier_test.cc). Not used by
// the library itself. With the hold on, the controller and the mark workers do no marking
// work and threads do not scan their own stacks, so a test can order each step of a
// cycle by hand.
#pragma once

#include <cstdint>

namespace tricolor::internal {

void test_set_hold(bool on);
// Requests a cycle and returns once its mark phase has started (world restarted).
void test_start_cycle();
// Drains the grey set completely on the calling thread.
void test_drain_all();
// Scans every parked stack now (the controller's job when not held).
void test_scan_parked_stacks();
// Greys p (marks it and queues it without scanning it).
void test_shade(const void* p);
// Waits until the cycle started by test_start_cycle is over and swept.
void test_wait_cycle_done();
bool test_is_marked(const void* p);
bool test_hold_on();
// Settings the tests shorten.
void set_force_gc_period(uint64_t ns);
void set_scavenge_delay(uint64_t ns);

}  // namespace tricolor::internal
