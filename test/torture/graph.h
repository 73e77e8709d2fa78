// The torture suite's object graphs: objects that carry their identity, edges that carry
// the identity of their target, and checks that name the broken edge.
//
// Every object records an identity written at allocation:
//
//   Node  (scanned: precise type, or conservative)     Blob (noscan, 1 B .. 100 KiB)
//   +0   id      kind|thread|size|serial                +0  id (if size >= 16)
//   +8   check   mix(id, nedges, layout)                +8  size
//   +16  nedges, layout                                 +16 bytes f(id, i)
//   +24  owner (atomic), seq (seqlock over edges)       (size < 16: every byte is f(id, i))
//   +32  edge[i] = { ptr (the only pointer word), id of the target (atomic) }
//
// An edge is written only by the thread that owns its node (owner), under the node's
// seqlock, with gc_write_ptr for the pointer; any thread may read it (consistent pair or
// retry). Whoever follows an edge checks the target against the id stored beside the
// pointer: an object freed while reachable, or its slot reused, shows as a wrong id, a
// wrong checksum, the freed-memory pattern, or a pointer gc_base no longer knows, and the
// report names the edge, the expected id and what was found.
//
// Pointers the checks hold live only where the collector sees them: stack variables,
// registered roots, heap objects. Never in malloc'd memory (std::vector), which the
// collector does not scan.
#pragma once

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tricolor/gc.h"

namespace torture {

// ---- Identities -------------------------------------------------------------------------

// id = kind (4 bits) | thread (8) | blob size or edge count (20) | serial (32). The top
// bits are never zero, so an id never looks like a heap address to a conservative scan.
enum Kind : uint64_t { kNodeKind = 0x9, kBlobKind = 0xb };
inline uint64_t make_id(uint64_t kind, uint32_t thread, uint32_t size, uint32_t serial) {
  return kind << 60 | uint64_t(thread & 0xff) << 52 | uint64_t(size & 0xfffff) << 32 | serial;
}
inline uint64_t id_kind(uint64_t id) { return id >> 60; }
inline uint32_t id_size(uint64_t id) { return uint32_t(id >> 32) & 0xfffff; }

inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}
inline uint8_t blob_byte(uint64_t id, size_t i) { return uint8_t(mix(id + i / 8) >> (i % 8 * 8)); }

inline constexpr uint64_t kPoison8 = 0xdbdbdbdbdbdbdbdbull;  // lib/gc/sweep.cc, stress builds

// ---- Objects ------------------------------------------------------------------------------

struct Edge {
  void* ptr;                     // the pointer word; written with gc_write_ptr
  std::atomic<uint64_t> id;      // id of the target, 0 when ptr is NULL
};

enum Layout : uint32_t { kPrecise = 1, kConservative = 2 };

struct Node {
  uint64_t id;
  uint64_t check;
  uint32_t nedges;
  uint32_t layout;
  std::atomic<uint32_t> owner;   // the thread that may write the edges
  std::atomic<uint32_t> seq;     // seqlock: odd while an edge is being written
  Edge* edges() { return reinterpret_cast<Edge*>(this + 1); }
};
static_assert(sizeof(Node) == 32 && sizeof(Edge) == 16);

inline uint64_t node_check(uint64_t id, uint32_t nedges, uint32_t layout) {
  return mix(id ^ (uint64_t(nedges) << 8 | layout));
}

inline constexpr uint32_t kTransit = 0xffffffffu;  // owner while a subgraph is in the mail

// Edge counts the suite allocates; the last ones are large objects (> 32 KiB; the very last
// spans several 128 KiB oblets).
inline constexpr uint32_t kEdgeCounts[] = {0, 1, 2, 3, 4, 5, 8, 12, 16, 31, 64, 2100, 9000};
inline constexpr int kNumEdgeCounts = sizeof kEdgeCounts / sizeof kEdgeCounts[0];

// One precise type per edge count (built once, after gc_init).
inline const gc_type* g_node_types[kNumEdgeCounts];
inline void make_node_types() {
  static size_t offs[9000];
  for (size_t i = 0; i < 9000; i++) offs[i] = sizeof(Node) + i * sizeof(Edge);
  for (int k = 0; k < kNumEdgeCounts; k++) {
    char name[32];
    snprintf(name, sizeof name, "TortureNode%u", kEdgeCounts[k]);
    g_node_types[k] = gc_type_new(name, sizeof(Node) + kEdgeCounts[k] * sizeof(Edge), offs,
                                  kEdgeCounts[k]);
    if (!g_node_types[k]) {
      fprintf(stderr, "torture: gc_type_new failed for %s\n", name);
      abort();
    }
  }
}

// ---- Failure reports ----------------------------------------------------------------------

inline std::atomic<int> g_failed{0};
inline thread_local const char* t_op = "?";
inline thread_local uint32_t t_thread = 0;

[[noreturn, gnu::cold]] inline void fail(const char* fmt, ...) {
  if (g_failed.fetch_add(1) == 0) {
    gc_stats s;
    gc_read_stats(&s);
    fprintf(stderr, "\nTORTURE FAILURE (thread %u, during %s, after %u GC cycles): ", t_thread,
            t_op, s.num_gc);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
  }
  abort();
}

// What a wrong word most likely means.
inline const char* diagnose(uint64_t found) {
  if (found == kPoison8) return "the freed-memory pattern: the object was freed while reachable";
  if (found == 0) return "zeroes: the object was freed and its slot reused or cleared";
  if (id_kind(found) == kNodeKind || id_kind(found) == kBlobKind)
    return "another object's identity: the slot was freed while reachable and reused";
  return "garbage: the memory is not this object any more";
}

// Where an edge came from, for the report.
struct From {
  const char* what;   // "edge", "root", "stack", "mail", "shared"
  const void* holder; // the node or slot holding the pointer
  uint64_t holder_id;
  uint32_t index;
};

// Checks the object at p against the identity `expect`. Returns p as a Node* for nodes.
inline Node* check_object(void* p, uint64_t expect, const From& from) {
  if (!p) {
    if (expect) fail("%s %u of %p (id %#llx): NULL pointer but the recorded target id is %#llx",
                     from.what, from.index, from.holder, (unsigned long long)from.holder_id,
                     (unsigned long long)expect);
    return nullptr;
  }
  void* base = gc_base(p);
  if (!base) {
    // Ask again a moment later: a transient NULL is a gc_base bug, a lasting one a freed
    // object.
    usleep(2000);
    void* again = gc_base(p);
    fail("%s %u of %p (id %#llx) -> %p (expected id %#llx): gc_base says this is not an "
         "allocated object (%s)",
         from.what, from.index, from.holder, (unsigned long long)from.holder_id, p,
         (unsigned long long)expect,
         again ? "but 2 ms later it is: gc_base gave a wrong answer for a live object"
               : "and still 2 ms later: it was freed while reachable");
  }
  uint32_t size = id_size(expect);
  if (id_kind(expect) == kNodeKind) {
    Node* n = static_cast<Node*>(p);
    if (base != p)
      fail("%s %u of %p (id %#llx) -> %p (expected node id %#llx): gc_base is %p, the node "
           "is not at the start of an object any more (freed and reused)",
           from.what, from.index, from.holder, (unsigned long long)from.holder_id, p,
           (unsigned long long)expect, base);
    uint64_t found = __atomic_load_n(&n->id, __ATOMIC_RELAXED);
    if (found != expect)
      fail("%s %u of %p (id %#llx) -> %p: expected node id %#llx, found %#llx (%s)", from.what,
           from.index, from.holder, (unsigned long long)from.holder_id, p,
           (unsigned long long)expect, (unsigned long long)found, diagnose(found));
    if (n->nedges != size || n->check != node_check(n->id, n->nedges, n->layout))
      fail("%s %u of %p (id %#llx) -> %p: node id %#llx matches but its header is damaged "
           "(nedges %u, expected %u; checksum %#llx, expected %#llx)",
           from.what, from.index, from.holder, (unsigned long long)from.holder_id, p,
           (unsigned long long)expect, n->nedges, size, (unsigned long long)n->check,
           (unsigned long long)node_check(n->id, n->nedges, n->layout));
    if (gc_size(p) < sizeof(Node) + size * sizeof(Edge))
      fail("node %#llx at %p: gc_size %zu is smaller than the node", (unsigned long long)expect,
           p, gc_size(p));
    return n;
  }
  if (id_kind(expect) != kBlobKind)
    fail("%s %u of %p: the recorded target id %#llx is not an id (the holder is damaged)",
         from.what, from.index, from.holder, (unsigned long long)expect);
  const uint8_t* b = static_cast<const uint8_t*>(p);
  if (size >= 16) {
    uint64_t found;
    memcpy(&found, b, 8);
    if (found != expect)
      fail("%s %u of %p (id %#llx) -> blob %p of %u bytes: expected id %#llx, found %#llx (%s)",
           from.what, from.index, from.holder, (unsigned long long)from.holder_id, p, size,
           (unsigned long long)expect, (unsigned long long)found, diagnose(found));
  }
  // Every byte of small blobs; the first and last 64 bytes and a sample of big ones.
  size_t start = size >= 16 ? 16 : 0;
  auto check_byte = [&](size_t i) {
    if (b[i] != blob_byte(expect, i))
      fail("%s %u of %p (id %#llx) -> blob %p (id %#llx, %u bytes): byte %zu is %#x, expected "
           "%#x (%s)",
           from.what, from.index, from.holder, (unsigned long long)from.holder_id, p,
           (unsigned long long)expect, size, i, b[i], blob_byte(expect, i),
           b[i] == 0xdb ? "the freed-memory pattern" : "overwritten: freed and reused");
  };
  if (size <= 256) {
    for (size_t i = start; i < size; i++) check_byte(i);
  } else {
    for (size_t i = start; i < 64; i++) check_byte(i);
    for (size_t i = size - 64; i < size; i++) check_byte(i);
    for (size_t i = 64; i < size - 64; i += 61) check_byte(i);
  }
  return nullptr;
}

// ---- Edges --------------------------------------------------------------------------------

struct Ref {
  void* p;
  uint64_t id;
};

// A consistent (pointer, id) pair of edge i, or false if the owner kept rewriting it.
inline bool read_edge(Node* n, uint32_t i, Ref* out) {
  Edge* e = &n->edges()[i];
  for (int tries = 0; tries < 1000; tries++) {
    uint32_t s1 = n->seq.load(std::memory_order_acquire);
    if (!(s1 & 1)) {
      void* p = __atomic_load_n(&e->ptr, __ATOMIC_RELAXED);
      uint64_t id = e->id.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (n->seq.load(std::memory_order_relaxed) == s1) {
        *out = {p, id};
        return true;
      }
    }
    // The writer may be parked for a stop of the world: let it stop us too.
    gc_safepoint();
    if (tries > 10) sched_yield();
  }
  return false;
}

// Writes edge i of a node the calling thread owns.
inline void write_edge(Node* n, uint32_t i, void* p, uint64_t id) {
  Edge* e = &n->edges()[i];
  uint32_t s = n->seq.load(std::memory_order_relaxed);
  n->seq.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  gc_write_ptr(&e->ptr, p);
  e->id.store(p ? id : 0, std::memory_order_relaxed);
  n->seq.store(s + 2, std::memory_order_release);
}

// ---- Allocation ---------------------------------------------------------------------------

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
  }
  uint32_t below(uint32_t n) { return n ? uint32_t(next() % n) : 0; }
  bool one_in(uint32_t n) { return below(n) == 0; }
};

// A node with a random edge count (large ones rarely), precise or conservative.
inline Node* new_node(Rng& r, uint32_t thread, uint32_t serial, uint32_t owner, uint64_t* id_out,
                      int max_kind = kNumEdgeCounts) {
  int k;
  uint32_t x = r.below(1000);
  if (x < 2 && max_kind > 12) k = 12;        // 144 KiB: two oblets
  else if (x < 8 && max_kind > 11) k = 11;   // 33 KiB: a large object
  else k = int(r.below(uint32_t(max_kind < 11 ? max_kind : 11)));
  uint32_t ne = kEdgeCounts[k];
  uint32_t layout = r.one_in(5) ? kConservative : kPrecise;
  size_t bytes = sizeof(Node) + ne * sizeof(Edge);
  Node* n = static_cast<Node*>(gc_alloc(bytes, layout == kPrecise ? g_node_types[k] : nullptr));
  if (!n) fail("gc_alloc(%zu) returned NULL", bytes);
  for (size_t i = 0; i < bytes; i += 8)
    if (reinterpret_cast<uint64_t*>(n)[i / 8] != 0) fail("gc_alloc(%zu) returned memory that is not zeroed (word %zu)", bytes, i / 8);
  uint64_t id = make_id(kNodeKind, thread, ne, serial);
  n->id = id;
  n->nedges = ne;
  n->layout = layout;
  n->check = node_check(id, ne, layout);
  n->owner.store(owner, std::memory_order_relaxed);
  *id_out = id;
  return n;
}

// A noscan blob of 1 B .. 100 KiB (tiny, small, large), filled from its id.
inline void* new_blob(Rng& r, uint32_t thread, uint32_t serial, uint64_t* id_out) {
  uint32_t x = r.below(100);
  uint32_t size;
  if (x < 40) size = 1 + r.below(15);            // tiny allocator
  else if (x < 95) size = 16 + r.below(2000);
  else if (x < 99) size = 2000 + r.below(30000);
  else size = 33000 + r.below(67000);            // large
  void* p = gc_alloc_noscan(size);
  if (!p) fail("gc_alloc_noscan(%u) returned NULL", size);
  uint64_t id = make_id(kBlobKind, thread, size, serial);
  uint8_t* b = static_cast<uint8_t*>(p);
  size_t start = 0;
  if (size >= 16) {
    memcpy(b, &id, 8);
    uint64_t sz = size;
    memcpy(b + 8, &sz, 8);
    start = 16;
  }
  for (size_t i = start; i < size; i++) b[i] = blob_byte(id, i);
  *id_out = id;
  return p;
}

}  // namespace torture
