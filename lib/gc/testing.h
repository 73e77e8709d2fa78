// Hooks for tests of the collector's interleavings (test/gc/barrier_test.cc) and of its
// verifiers (test/gc/verify_test.cc). Not used by
// the library itself. With the hold on, the controller and the mark workers do no marking
// work and threads do not scan their own stacks, so a test can order each step of a
// cycle by hand.
#pragma once

#include <cstddef>
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
// Runs fn(arg) once, at the next mark termination, with the world stopped, before the heap
// verifier and the check-mark mode: a test plants a collector bug there and checks that the
// verifiers see it (and undoes it before the sweep).
void test_at_mark_termination(void (*fn)(void*), void* arg);
// Sets or clears the mark bit of the object at p (world stopped: from the hook above).
void test_set_mark(const void* p, bool on);
bool test_hold_on();
// The bound on work buffers (mark.h, INV-MARK-4): at most nbufs exist; 0 restores the
// default (kMaxWorkbufs). A tiny bound makes marking overflow and rescan.
void test_set_workbuf_limit(size_t nbufs);
size_t test_workbufs();          // work buffers in existence now
uint64_t test_mark_overflows();  // greys that found no buffer, since gc_init
uint64_t test_mark_rescans();    // overflow rescans run, since gc_init
// Settings the tests shorten.
void set_force_gc_period(uint64_t ns);
void set_scavenge_delay(uint64_t ns);

}  // namespace tricolor::internal
