// The collector: the cycle, its background threads, and the hooks the allocator and the
// thread layer call. See lib/gc/README.md for the overview.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "gc/pacer.h"

struct gc_type;

namespace tricolor::internal {

struct ThreadState;
struct GcWork;
struct mspan;
struct Stack;

enum class Phase : uint32_t { kOff = 0, kMark = 1, kMarkTermination = 2 };
enum class CycleReason : uint32_t { kHeap, kUser, kPeriodic, kOom, kStress };
const char* reason_name(CycleReason r);

bool collector_initialized();
bool ever_initialized();  // a heap ran once (messages say "after gc_shutdown")
Phase gc_phase();
// gc_run brackets its run with these (lib/sched): gc_shutdown refuses to release the heap
// under running fibers.
void collector_sched_running(bool on);

// ---- Hooks of the allocator ------------------------------------------------------------
// Allocation slow path (span refill or large object): safepoint, assist, trigger check.
void alloc_slow_hook(ThreadState* t, size_t bytes);
// The heap cannot grow (memory limit or OS): run a full collection; the caller retries.
void collect_for_oom();
// Still no memory after collecting: the OOM handler; returns nullptr if it returns.
void* out_of_memory(size_t request);
// Heap-trace allocation sample (about one per 512 KiB): the object at p, in span s, which
// the calling thread owns (cached, or a large span not yet filed).
void sample_allocation(ThreadState* t, mspan* s, uintptr_t p, const gc_type* type, size_t size);
inline constexpr uint64_t kSampleBytes = 512 << 10;

// ---- Hooks of the thread layer ---------------------------------------------------------
void flush_wbuf(ThreadState* t);
void scan_own_stack(ThreadState* t);
void stress_safepoint(ThreadState* t);
void stress_alloc();  // GC stress mode: called by gc_alloc*, collects every Nth call
// The background sweeper: the last cycle whose mark has ended (read when a sweep pass
// starts), and the end of a pass that swept everything that cycle left (INV-SWEEP: a pass
// reports only the cycle it started for, so a pass that was overtaken by a later cycle's
// mark termination cannot report that later cycle's sweep as done).
// cpu_ns: the pass's CPU time (reported in the heap trace's sweep_done event).
uint64_t cycles_marked();
void on_sweep_done(uint64_t cycle, uint64_t cpu_ns);

// ---- Stacks (stacks.cc) ------------------------------------------------------------------
void stacks_begin_cycle(uint64_t cycle);
void stacks_end_cycle();
int64_t stacks_unscanned();
uint64_t stacks_scanned_total();
size_t stacks_live();
size_t scan_parked_stacks(GcWork& w);
std::vector<const char*> running_unscanned_labels(size_t max);

// Calls f on each registered stack (registry lock held): the check-mark mode.
void stacks_for_each(const std::function<void(Stack*)>& f);

// ---- Roots (roots.cc) --------------------------------------------------------------------
size_t scan_roots(GcWork& w);  // returns bytes scanned
size_t roots_bytes();
// Calls f(start, bytes) on each registered root (roots lock held): the check-mark mode.
void roots_for_each(const std::function<void(uintptr_t, size_t)>& f);

// ---- State shared with statistics and tracing -----------------------------------------
struct CycleTimes {
  uint64_t start_ns = 0, mark_ns = 0, mark_term_ns = 0, end_ns = 0;  // monotonic
  uint64_t pause_ns[2] = {0, 0};                                      // STW1, STW2 (summed)
  uint64_t assist_cpu_ns = 0, worker_cpu_ns = 0, idle_cpu_ns = 0;
  uint64_t heap_start = 0, heap_end = 0, heap_marked = 0;
  uint64_t goal = 0, trigger = 0;
  uint64_t stacks_scanned = 0;
  int restarts = 0;
  CycleReason reason = CycleReason::kHeap;
};

struct CollectorStats {
  std::atomic<uint32_t> num_gc{0};
  std::atomic<uint32_t> num_forced_gc{0};
  std::atomic<uint64_t> pause_total_ns{0};
  std::atomic<uint64_t> pause_max_ns{0};
  std::atomic<uint64_t> last_gc_unix_ns{0};
  std::atomic<uint64_t> gc_cpu_ns{0};
  std::atomic<uint64_t> assist_ns{0};
  std::atomic<uint64_t> idle_mark_ns{0};
  std::atomic<uint64_t> mark_ns{0};
  std::atomic<uint64_t> mark_worker_ns{0};
  uint64_t pause_ns[256] = {};      // ring, written by the controller (stats lock)
  uint64_t pause_end_ns[256] = {};
  uint64_t start_ns = 0;            // monotonic, at gc_init
  // A new heap (gc_init after gc_shutdown) starts from zero; the collector is not running.
  void reset() {
    for (auto* a : {&pause_total_ns, &pause_max_ns, &last_gc_unix_ns, &gc_cpu_ns, &assist_ns, &idle_mark_ns,
                    &mark_ns, &mark_worker_ns})
      a->store(0, std::memory_order_relaxed);
    num_gc.store(0, std::memory_order_relaxed);
    num_forced_gc.store(0, std::memory_order_relaxed);
    for (auto& p : pause_ns) p = 0;
    for (auto& p : pause_end_ns) p = 0;
  }
};
CollectorStats& collector_stats();
Pacer pacer_snapshot();
int configured_procs();
// While gc_run runs: every P runs a fiber (no P is idle). The background sweeper then
// leaves the sweeping to the allocating fibers (sweep.cc).
bool sched_procs_busy();
// gc_options.fiber_stack_size (bytes of address space per fiber stack).
size_t configured_fiber_stack_size();
// The heap verifier after every mark termination (verify.cc): on by default in debug and
// stress builds (TRICOLOR_VERIFY=0/1 at gc_init overrides); tests turn it on or off here.
void set_verify_each_cycle(bool on);
bool verify_each_cycle();
uint64_t verify_failures();
// An INV-MARK-1 violation: a marked object and the unmarked object one of its words names.
struct VerifyEdge {
  uintptr_t from, to;
};
// Checks the heap with the world stopped; returns violations (logged). If edges is given,
// the first INV-MARK-1 violations (up to 16) are appended to it.
uint64_t verify_heap(bool after_mark, std::vector<VerifyEdge>* edges = nullptr);

}  // namespace tricolor::internal
