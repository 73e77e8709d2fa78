// Test support: a small allocation workload with a few named types, a live set that grows,
// churns and shrinks, garbage of many sizes (small typed, pointer-free, large), forced
// cycles and a return of memory to the OS. The heap must be initialised by the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>

#include "tricolor/gc.h"

namespace tricolor::test {

struct TraceNode {  // a binary tree: 24 B, two pointers
  TraceNode* left;
  TraceNode* right;
  uint64_t value;
};
struct TraceRecord {  // a list cell with a pointer-free payload: 48 B
  TraceRecord* next;
  void* payload;
  uint64_t key[4];
};

inline const gc_type* trace_node_type() {
  static const gc_type* t = [] {
    size_t offs[] = {offsetof(TraceNode, left), offsetof(TraceNode, right)};
    return gc_type_new("TraceNode", sizeof(TraceNode), offs, 2);
  }();
  return t;
}
inline const gc_type* trace_record_type() {
  static const gc_type* t = [] {
    size_t offs[] = {offsetof(TraceRecord, next), offsetof(TraceRecord, payload)};
    return gc_type_new("TraceRecord", sizeof(TraceRecord), offs, 2);
  }();
  return t;
}
inline const gc_type* trace_table_type() {  // large arrays of pointers
  static const gc_type* t = [] {
    size_t offs[] = {0};
    return gc_type_new("TraceTable", sizeof(void*), offs, 1);
  }();
  return t;
}

inline TraceNode* make_tree(int depth) {
  auto* n = static_cast<TraceNode*>(gc_alloc(sizeof(TraceNode), trace_node_type()));
  n->value = uint64_t(depth);
  if (depth > 0) {
    gc_write_ptr(&n->left, make_tree(depth - 1));
    gc_write_ptr(&n->right, make_tree(depth - 1));
  }
  return n;
}

// Figures of a run, for the checks of a test.
struct WorkloadResult {
  uint64_t bytes_requested = 0;  // sum of the sizes passed to the allocator
  // ... by type (plain fields: a result may live in memory shared with a parent process)
  uint64_t node_bytes = 0, record_bytes = 0, table_bytes = 0;
  uint64_t untyped_bytes = 0;  // the pointer-free payloads
  int forced_cycles = 0;         // gc_collect calls
};

// Allocates about `mib` MiB. The live set peaks near mib/16 MiB.
inline WorkloadResult run_workload(size_t mib, uint32_t seed = 1) {
  constexpr int kSlots = 1024;
  static void* slots[kSlots];  // a registered root: plain stores are allowed
  static bool rooted = false;
  if (!rooted) {
    gc_add_root(slots, sizeof slots);
    rooted = true;
  }
  for (auto& s : slots) s = nullptr;
  std::mt19937_64 rng(seed);
  WorkloadResult r;
  const uint64_t total = uint64_t(mib) << 20;
  const int tree_depth = 9;  // 1023 nodes, 32 KiB
  const uint64_t tree_bytes = 1023 * 32;
  auto live_target = [&](uint64_t done) {
    // Grows to 1/16 of the total over the first half, then shrinks to a quarter of that.
    double f = double(done) / double(total);
    double peak = double(total) / 16;
    return uint64_t(f < 0.5 ? peak * (f / 0.5) : peak * (1 - 0.75 * (f - 0.5) / 0.5));
  };
  uint64_t done = 0;
  int forced_at[] = {30, 60, 90};  // percent of the run
  int next_forced = 0;
  while (done < total) {
    int pct = int(100 * done / total);
    if (next_forced < 3 && pct >= forced_at[next_forced]) {
      gc_collect();
      r.forced_cycles++;
      next_forced++;
    }
    // The live set: trees in the slots, as many as the target allows.
    uint64_t want = live_target(done) / tree_bytes;
    if (want > kSlots) want = kSlots;
    size_t slot = rng() % kSlots;
    if (slot < want) {
      slots[slot] = make_tree(tree_depth);
      done += 1023 * sizeof(TraceNode);
      r.bytes_requested += 1023 * sizeof(TraceNode);
      r.node_bytes += 1023 * sizeof(TraceNode);
    } else {
      slots[slot] = nullptr;
    }
    // Garbage: a list of records with pointer-free payloads of many sizes.
    TraceRecord* head = nullptr;
    for (int i = 0; i < 64; i++) {
      auto* rec = static_cast<TraceRecord*>(gc_alloc(sizeof(TraceRecord), trace_record_type()));
      size_t psize = 16 + rng() % 2048;
      gc_write_ptr(&rec->payload, gc_alloc_noscan(psize));
      gc_write_ptr(&rec->next, head);
      head = rec;
      done += sizeof(TraceRecord) + psize;
      r.bytes_requested += sizeof(TraceRecord) + psize;
      r.record_bytes += sizeof(TraceRecord);
      r.untyped_bytes += psize;
    }
    // Now and then a large table (64 KiB .. 512 KiB).
    if (rng() % 16 == 0) {
      size_t n = (8192 + rng() % 57344);
      void** t = static_cast<void**>(gc_alloc(n * sizeof(void*), trace_table_type()));
      gc_write_ptr(&t[0], head);
      done += n * sizeof(void*);
      r.bytes_requested += n * sizeof(void*);
      r.table_bytes += n * sizeof(void*);
    }
  }
  for (auto& s : slots) s = nullptr;
  gc_collect();
  r.forced_cycles++;
  gc_free_os_memory();  // a collection too
  r.forced_cycles++;
  return r;
}

}  // namespace tricolor::test
