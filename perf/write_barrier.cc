// write_barrier: what gc_write_ptr costs, with the barrier off and on.
//
// Stresses: the inline fast path (one relaxed load of tricolor_barrier_on and a branch)
// against a plain pointer store, and the hybrid barrier's slow path while marking runs
// (shade the old value and the new one into the per-P buffer, then store).
//
// Three loops do the same work: 4096-store blocks, each store writing a pointer taken from
// a table of `--values` heap objects (random objects of the heap) into the first word of one
// of 512 holder objects (32 KiB, contiguous: the stores themselves hit the L1 cache).
// A compiler barrier after each store keeps the three loops instruction-for-instruction
// alike apart from the store itself:
//   wb/plain  *slot = value
//   wb/off    gc_write_ptr(slot, value) with no cycle running (barrier off)
//   wb/on     gc_write_ptr(slot, value) during the concurrent mark phase of a real cycle
//
// How "on" is arranged: the program builds a heap of `--heap-mb` (random links, so marking
// is slow: cache misses on every object) and then allocates garbage until the pacer starts a
// cycle by itself (a background cycle, mark workers at 25% of procs, as in a running
// program; gc_collect would run the workers flat out instead). While the flag
// tricolor_barrier_on is set, the loop runs store blocks and counts a block only when the
// barrier was on both before and after it; between blocks it calls gc_safepoint() so the
// thread scans its own stack and lets mark termination stop it. Repeated for `--cycles`.
// Most shades find the object already marked after the first moments of a cycle, which is
// the common case in a running program; the first shade of a white object also pays for
// marking it.
//
//   write_barrier [--impl=tricolor] [--heap-mb=512] [--values=4096] [--cycles=3] [--quick]
#include "harness.h"

using namespace perf;

namespace {

struct Node {
  Node* next;
  Node* other;
  uint64_t payload[6];
};

constexpr size_t kHolders = 512;  // 32 KiB of holder objects: the stores hit L1
constexpr size_t kBlock = 4096;

enum class Mode { kPlain, kBarrier };

// One block of kBlock stores starting at `i`. noinline: the three loops compile alike.
template <Mode mode>
[[gnu::noinline]] void store_block(Node** holders, Node** values, size_t vmask, size_t i) {
  for (size_t k = 0; k < kBlock; k++, i++) {
    Node* h = holders[i & (kHolders - 1)];
    Node* v = values[(i * 7) & vmask];
    if constexpr (mode == Mode::kPlain) h->next = v;
    else gc_write_ptr(&h->next, v);
    asm volatile("" ::: "memory");
  }
}

bool barrier_on() { return __atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) != 0; }

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv);
  if (parse_impl(o) != Impl::kTricolor) Options::die("write_barrier measures tricolor only");
  long heap_mb = o.num("heap-mb", o.quick() ? 128 : 512);
  size_t nvalues = size_t(o.num("values", 4096));
  int cycles = int(o.num("cycles", o.quick() ? 2 : 3));
  long off_blocks = o.num("blocks", o.quick() ? 20000 : 100000);
  if (nvalues & (nvalues - 1)) Options::die("--values must be a power of two");
  init_impl(Impl::kTricolor);

  size_t offs[] = {offsetof(Node, next), offsetof(Node, other)};
  const gc_type* node_t = gc_type_new("WbNode", sizeof(Node), offs, 2);
  size_t word = 0;
  const gc_type* slots_t = gc_type_new("WbSlots", sizeof(void*), &word, 1);

  // The heap: n nodes in a table (a root on this stack), each linked to a random other.
  size_t n = size_t(heap_mb) << 20;
  n /= sizeof(Node) + sizeof(void*);
  Node** table = static_cast<Node**>(gc_alloc(n * sizeof(void*), slots_t));
  for (size_t i = 0; i < n; i++) gc_write_ptr(&table[i], gc_alloc(sizeof(Node), node_t));
  Rng rng(7);
  for (size_t i = 0; i < n; i++) gc_write_ptr(&table[i]->other, table[rng.below(n)]);
  Node** holders = static_cast<Node**>(gc_alloc(kHolders * sizeof(void*), slots_t));
  for (size_t i = 0; i < kHolders; i++) {  // fresh and contiguous: cache-resident targets
    Node* h = static_cast<Node*>(gc_alloc(sizeof(Node), node_t));
    gc_write_ptr(&h->next, table[rng.below(n)]);
    gc_write_ptr(&holders[i], h);
  }
  Node** values = static_cast<Node**>(gc_alloc(nvalues * sizeof(void*), slots_t));
  for (size_t i = 0; i < nvalues; i++) gc_write_ptr(&values[i], table[rng.below(n)]);
  gc_collect();  // start from a finished cycle: the barrier is off
  const size_t vmask = nvalues - 1;

  // Times are the thread's CPU time: time descheduled on a busy machine does not count.
  auto timed = [&](auto block, long blocks) {
    uint64_t t0 = thread_cpu_ns();
    for (long b = 0; b < blocks; b++) block(size_t(b) * kBlock);
    return double(thread_cpu_ns() - t0) / double(blocks * long(kBlock));
  };
  // Plain and off alternate in five rounds; the best round of each is kept (noise only
  // ever adds time).
  double plain = 1e9, off = 1e9;
  for (int r = 0; r < 5; r++) {
    plain = std::min(plain, timed([&](size_t i) { store_block<Mode::kPlain>(holders, values, vmask, i); },
                                  off_blocks / 5));
    if (barrier_on()) Options::die("a cycle started during the barrier-off loop");
    off = std::min(off, timed([&](size_t i) { store_block<Mode::kBarrier>(holders, values, vmask, i); },
                              off_blocks / 5));
  }

  // Barrier on: let the pacer start cycles, measure while marking.
  uint64_t on_ns = 0, on_stores = 0, on_wall = 0;
  for (int c = 0; c < cycles; c++) {
    gc_stats s;
    gc_read_stats(&s);
    uint32_t start_cycles = s.num_gc;
    while (!barrier_on()) keep(gc_alloc_noscan(64));  // garbage until a cycle starts
    uint64_t w0 = now_ns();
    size_t i = 0;
    while (true) {
      bool before = barrier_on();
      uint64_t t0 = thread_cpu_ns();
      store_block<Mode::kBarrier>(holders, values, vmask, i);
      uint64_t t1 = thread_cpu_ns();
      bool after = barrier_on();
      if (before && after) {
        on_ns += t1 - t0;
        on_stores += kBlock;
      }
      i += kBlock;
      gc_safepoint();
      if (!after) {
        gc_read_stats(&s);
        if (s.num_gc > start_cycles) break;
      }
    }
    on_wall += now_ns() - w0;
  }
  double on = on_stores ? double(on_ns) / double(on_stores) : 0;
  keep(table);

  report("wb/plain", Impl::kTricolor, uint64_t(plain * double(off_blocks) * kBlock),
         kv("ns_per_store", plain));
  report("wb/off", Impl::kTricolor, uint64_t(off * double(off_blocks) * kBlock),
         kv("ns_per_store", off) + " " + kv("over_plain_ns", off - plain));
  report("wb/on", Impl::kTricolor, on_wall,
         kv("ns_per_store", on) + " " + kv("over_off_ns", on - off) + " " +
             kv("stores", (long long)on_stores) + " " + kv("mark_wall_s", double(on_wall) / 1e9));
  return 0;
}
