// Heap-trace dumps (JSON Lines, format version 1) and gctrace lines; both formats are
// documented field by field in docs/tracing.md, and tools/heaptrace/report.py reads dumps.
//
// Cost: nothing here runs on a fast path. Cycle events are formatted by the controller
// thread outside stop-the-world pauses; an allocation sample is formatted on the span
// refill slow path about once per kSampleBytes allocated; one background writer thread
// does the file I/O, so neither the collector nor a mutator waits for the disk.
#pragma once

#include <cstdint>
#include <string>

#include "gc/collector.h"

namespace tricolor::internal {

inline constexpr int kHeapTraceVersion = 1;

// Opens the dump; false (with a message) if the path cannot be written: the program runs
// on without tracing.
bool heaptrace_open(const char* path, int procs, int gogc, uint64_t memory_limit);
// Writes the `end` event, drains the queue and closes the file (gc_shutdown).
void heaptrace_close();
bool heaptrace_enabled();
// Queues one event line (a JSON object without the trailing newline).
void heaptrace_emit(std::string line);

// Event builders (called by the collector's threads).
void trace_cycle_begin(uint32_t cycle, CycleReason reason, uint64_t heap_live, uint64_t trigger,
                       uint64_t goal);
void trace_pause(uint32_t cycle, const char* phase, uint64_t ns);
void trace_cycle_end(uint32_t cycle, const CycleTimes& ct, double gc_cpu_fraction);
// by: who saw the sweep finish ("background", "foreground", "sweep_termination").
void trace_sweep_done(uint32_t cycle, uint64_t wall_ns, uint64_t cpu_ns, uint64_t spans,
                      uint64_t bytes, const char* by);
void trace_scavenge(uint64_t released, const char* reason);
// An allocation sample: remembers the object (p, in span s, owned by the caller) until the
// sweep frees it, and writes `alloc_sample`. type: a name that lives as long as the process.
void trace_alloc_sample(mspan* s, uintptr_t p, const char* type, uint64_t size, uint64_t weight);
// The sweep of s, which holds sampled objects (s->nsampled != 0), before its mark bits
// become its alloc bits: writes `free_sample` for each sampled object left unmarked and
// forgets it. Called by the span's sweeper.
void trace_sweep_samples(mspan* s);
// Forgets every sampled object (a dump is opened or closed).
void trace_forget_samples();
void trace_oom(uint64_t request, uint64_t limit);

// One gctrace line for a finished cycle, without the newline (Go's shape, fields in
// docs/tracing.md). at_s: seconds from gc_init to the start of the cycle.
std::string gctrace_format(uint32_t cycle, double at_s, const CycleTimes& ct,
                           double gc_cpu_fraction, int procs);
// Prints gctrace_format's line for a finished cycle on stderr.
void gctrace_print(uint32_t cycle, const CycleTimes& ct, double gc_cpu_fraction, int procs);

uint64_t trace_now_ns();  // ns since gc_init

}  // namespace tricolor::internal
