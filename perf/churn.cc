// churn: a large long-lived heap (1 GiB live by default) under a steady churn of pointer
// updates; what pauses look like at scale.
//
// Stresses: marking a heap far larger than the caches while the program runs (random
// pointers: about one cache miss per object), the write barrier on every update, pause
// times that must not grow with the heap (tricolor stops the world only for the two phase
// changes; bdwgc marks the whole heap with the world stopped), and the heap goal.
//
// Shape: a table of S slots, stored as chunks of 1024 slots (8 KiB pointer arrays) under a
// spine. Each slot owns a record: a 64-byte node whose `child` is a 64-byte leaf (about
// 136 B per slot with the slot itself). Each operation then
//   1. replaces a random slot with a fresh record (the old one is garbage, or freed by the
//      malloc peers), and
//   2. swaps the children of two random records (two heap pointer stores between old
//      objects).
// After building the table (`build_s`), `--ops` operations run (default: 4 per slot, so the
// program allocates about four times its live heap during the churn). The time and pauses
// cover build and churn; `churn_s` is the churn alone.
//
//   churn --impl=tricolor|bdwgc|malloc|mimalloc [--live-mb=1024] [--ops=N] [--quick]
#include "harness.h"

using namespace perf;

namespace {

struct Leaf {
  uint64_t payload[8];
};
struct Record {
  Leaf* child;
  Record* unused;  // keeps the record pointerful in two words, like a typical object
  uint64_t payload[6];
};
static_assert(sizeof(Record) == 64 && sizeof(Leaf) == 64, "64-byte objects");

constexpr size_t kChunkSlots = 1024;

const gc_type* g_record_type = nullptr;
const gc_type* g_slots_type = nullptr;  // one pointer word, repeated: chunks and spine

template <class M>
struct Churn {
  size_t slots;
  long ops;
  Record*** spine = nullptr;  // spine[c] is a chunk: kChunkSlots Record* slots

  Record* new_record(uint64_t seed) {
    Leaf* leaf = static_cast<Leaf*>(M::alloc_noscan(sizeof(Leaf)));
    for (int i = 0; i < 8; i++) leaf->payload[i] = seed + uint64_t(i);
    Record* r = static_cast<Record*>(M::alloc(sizeof(Record), g_record_type));
    M::store(&r->child, leaf);
    M::store(&r->unused, nullptr);
    for (int i = 0; i < 6; i++) r->payload[i] = seed;
    return r;
  }
  void drop(Record* r) {
    if constexpr (M::kManual) {
      M::release(r->child);
      M::release(r);
    }
  }
  Record** slot(size_t i) { return &spine[i / kChunkSlots][i % kChunkSlots]; }

  void build() {
    size_t chunks = (slots + kChunkSlots - 1) / kChunkSlots;
    spine = static_cast<Record***>(M::alloc(chunks * sizeof(void*), g_slots_type));
    for (size_t c = 0; c < chunks; c++) {
      void* chunk = M::alloc(kChunkSlots * sizeof(void*), g_slots_type);
      memset(chunk, 0, kChunkSlots * sizeof(void*));  // the manual managers do not clear
      M::store(&spine[c], chunk);
    }
    for (size_t i = 0; i < slots; i++) M::store(slot(i), new_record(i));
  }

  long churn() {
    Rng rng(42);
    long checksum = 0;
    for (long op = 0; op < ops; op++) {
      size_t i = rng.below(slots);
      Record** s = slot(i);
      Record* old = *s;
      checksum += long(old->child->payload[0] & 0xff);
      M::store(s, new_record(uint64_t(op)));
      drop(old);

      Record* a = *slot(rng.below(slots));
      Record* b = *slot(rng.below(slots));
      Leaf* ca = a->child;
      M::store(&a->child, b->child);
      M::store(&b->child, ca);
    }
    return checksum;
  }

};

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv);
  Impl impl = parse_impl(o);
  long live_mb = o.num("live-mb", o.quick() ? 128 : 1024);
  size_t slots = size_t(live_mb) * (1 << 20) / (sizeof(Record) + sizeof(Leaf) + sizeof(void*));
  long ops = o.num("ops", long(slots) * 4);
  init_impl(impl);
  if (impl == Impl::kTricolor) {
    size_t offs[] = {offsetof(Record, child), offsetof(Record, unused)};
    g_record_type = gc_type_new("ChurnRecord", sizeof(Record), offs, 2);
    g_slots_type = gc_type_new("ChurnSlot", sizeof(void*), offs, 1);
  }
  // The final heap is not torn down (a program would exit): no impl pays for it.
  uint64_t t0 = now_ns(), t1 = 0;
  long sum = dispatch(impl, [&]<class M>() {
    Churn<M> c{slots, ops};
    c.build();
    t1 = now_ns();
    long s = c.churn();
    keep(c.spine);
    return s;
  });
  uint64_t t2 = now_ns(), wall = t2 - t0;
  char name[64];
  snprintf(name, sizeof name, "churn/%ldMiB", live_mb);
  report(name, impl, wall,
         kv("build_s", double(t1 - t0) / 1e9) + " " + kv("churn_s", double(t2 - t1) / 1e9) +
             " " + kv("ops", (long long)ops) + " " + kv("check", (long long)sum));
  return 0;
}
