// Hooks for tests of the collector's interleavings (test/gc/barrier_test.cc), of its
// verifiers (test/gc/verify_test.cc), of stopping the world and of sweeping
// (test/gc/thread_test.cc, sweep_test.cc). Not used by
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
// Stops the world from the calling thread (unattached, or attached inside a blocking
// region) and releases it; the same thread calls both (it holds the registry lock between).
void test_stop_the_world();
void test_start_the_world();
// Widens the gap in park_for_stw between a parked thread seeing the world restarted and
// publishing itself running (spins `ns`; 0, the default: no spin). A stop of the world that
// begins in that gap must still wait for the thread.
void test_set_unpark_delay(uint64_t ns);
// Asks the controller for a cycle as the heap trigger does (nobody waits for it: the
// background sweeper alone sweeps it) and returns at once.
void test_request_background_cycle();
// Time the scheduler's P's have spent marking at their span refills (fractional_mark),
// since gc_init.
uint64_t test_fractional_mark_ns();
// The share of its wall time each busy P marks at its refills now (0.25 at mark start; the
// mark workers lower it while P's are idle: their marking carries the 25% first).
double test_fractional_goal();
// Write-barrier buffer entries the last mark termination attempt flushed with the world
// stopped (those the ragged flush before it did not take).
int test_pause_wbuf_entries();
// The last cycle whose sweep is known finished (by the background sweeper or a waiter).
uint64_t test_cycles_swept();
// Cycles whose sweep termination ran on the allocating thread that crossed the trigger
// (start_cycle_from_allocation), not on the controller.
uint64_t test_cycles_begun_by_allocation();
// With the hold on, the background sweeper takes its wake-up but sweeps nothing until the
// hold is off: the cycle's spans stay unswept for allocation to sweep (gc_collect waits).
void test_hold_background_sweeper(bool on);
// The background sweeper's kernel thread id, once it has started (0 before).
long test_background_sweeper_tid();
// GC stress builds: while held (calls nest: each `true` is undone by one `false`), no stress
// collection runs (the collections every TRICOLOR_STRESS_N allocations and every
// TRICOLOR_STRESS_SAFEPOINT_N safepoints). For a test that counts what the cycles it starts
// itself do, or that waits for a state a collection would undo. No effect in other builds.
void test_hold_stress_collections(bool on);
// Settings the tests shorten (0: the default again).
void set_force_gc_period(uint64_t ns);
void set_scavenge_delay(uint64_t ns);
// How long stop_the_world waits for a thread before naming it (default kStopWarnNs, 1 s).
void set_stop_warn_ns(uint64_t ns);

}  // namespace tricolor::internal
