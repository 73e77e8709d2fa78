// The sampled objects still in the heap, for the heap trace's in-use bytes by type.
//
// Go's heap profile attaches a "special" record to the span of each sampled object and its
// sweeper reports the object's free to the profile (mprof.go, mgcsweep.go). tricolor keeps
// the records in one side table keyed by address, under a mutex, touched only on the
// sample path (about once per 512 KiB allocated) and by the sweep of a span that holds a
// sample; mspan::nsampled tells the sweep, in one load, whether to look at all.
//
// Concurrency: the table is guarded by its mutex. nsampled belongs to the span's owner:
// the thread that samples holds the span (cached, or a large span not yet filed), the
// sweeper owns the span it sweeps; the span changes hands through the mcentral lists or
// a stopped world, which order the count.
#pragma once

#include <cstdint>
#include <vector>

namespace tricolor::internal {

struct mspan;

struct SampleRecord {
  uint64_t id = 0;           // unique within the process, from 1
  uintptr_t addr = 0;        // the object
  const char* type = "";     // lives as long as the process (gc_type names are never freed)
  uint64_t size = 0;         // the requested size
  uint64_t weight = 0;       // bytes the sample stands for
};

// Remembers the object at p, in span s (owned by the caller); returns its record.
SampleRecord samples_remember(mspan* s, uintptr_t p, const char* type, uint64_t size,
                              uint64_t weight);
// Sweep of s (s->nsampled != 0), before its mark bits become its alloc bits: moves the
// records of its unmarked (dead) sampled objects into *dead.
void samples_take_dead(mspan* s, std::vector<SampleRecord>* dead);
// Forgets every record (a dump is opened or closed; spans keep their counts, which only
// cost their sweep a look into the table).
void samples_clear();

}  // namespace tricolor::internal
