// gcbench: Boehm's classic GCBench (after John Ellis and Pete Kovac; parameters as in the
// original: stretch tree depth 18, long-lived tree depth 16, an array of 500000 doubles,
// temporary trees of depth 4, 6, ..., 16, built top-down and bottom-up).
//
// Stresses: a high rate of small (24 B -> 32 B class) pointerful allocations that die
// young, with a small long-lived structure (a 4 MiB tree and a 4 MB pointer-free array)
// that must survive every cycle. Measures throughput and pauses on a small heap; the
// collector runs many short cycles. The malloc and mimalloc peers free every temporary
// tree explicitly (the manual-memory floor).
//
//   gcbench --impl=tricolor|bdwgc|malloc|mimalloc [--stretch=18] [--long-lived=16]
//           [--array=500000] [--min-depth=4] [--max-depth=16] [--quick]
#include "harness.h"

using namespace perf;

namespace {

struct Node {
  Node* left;
  Node* right;
  int i, j;
};

const gc_type* g_node_type = nullptr;

struct Params {
  int stretch, long_lived, array, min_depth, max_depth;
};

long tree_size(int depth) { return (1L << (depth + 1)) - 1; }

template <class M>
struct Bench {
  const Params& p;

  static Node* new_node(Node* l, Node* r) {
    Node* n = static_cast<Node*>(M::alloc(sizeof(Node), g_node_type));
    M::store(&n->left, l);
    M::store(&n->right, r);
    n->i = 0;
    n->j = 0;
    return n;
  }

  // Top-down: children are allocated and linked into an existing parent.
  static void populate(int depth, Node* node) {
    if (depth <= 0) return;
    depth--;
    M::store(&node->left, new_node(nullptr, nullptr));
    M::store(&node->right, new_node(nullptr, nullptr));
    populate(depth, node->left);
    populate(depth, node->right);
  }

  // Bottom-up: children first, then the parent that holds them.
  static Node* make_tree(int depth) {
    if (depth <= 0) return new_node(nullptr, nullptr);
    Node* l = make_tree(depth - 1);
    Node* r = make_tree(depth - 1);
    return new_node(l, r);
  }

  static void drop(Node* n) {
    if constexpr (M::kManual) {
      if (!n) return;
      drop(n->left);
      drop(n->right);
      M::release(n);
    }
  }

  static long count(const Node* n) {
    M::poll();  // a walk that does not allocate polls for safepoints
    return n ? 1 + count(n->left) + count(n->right) : 0;
  }

  long time_construction(int depth) {
    long iters = 2 * tree_size(p.stretch) / tree_size(depth);
    long nodes = 0;
    for (long i = 0; i < iters; i++) {
      Node* t = new_node(nullptr, nullptr);
      populate(depth, t);
      nodes += tree_size(depth);
      drop(t);
    }
    for (long i = 0; i < iters; i++) {
      Node* t = make_tree(depth);
      nodes += tree_size(depth);
      drop(t);
    }
    return nodes;
  }

  long run() {
    Node* stretch = make_tree(p.stretch);
    drop(stretch);

    Node* long_lived = new_node(nullptr, nullptr);
    populate(p.long_lived, long_lived);
    double* array = static_cast<double*>(M::alloc_noscan(sizeof(double) * size_t(p.array)));
    // A loop that does not allocate polls for safepoints, every 1024 iterations here (as a
    // JIT strip-mines the polls of a counted loop): without it, filling the array held up
    // a stop of the world for up to a millisecond.
    for (int i = 0; i < p.array / 2; i++) {
      if ((i & 1023) == 0) M::poll();
      array[i] = 1.0 / i;
    }
    keep(array);

    long nodes = 0;
    for (int d = p.min_depth; d <= p.max_depth; d += 2) nodes += time_construction(d);

    if (count(long_lived) != tree_size(p.long_lived) || array[1000] != 1.0 / 1000)
      Options::die("gcbench: the long-lived data did not survive");
    keep(long_lived);
    drop(long_lived);
    if constexpr (M::kManual) M::release(array);
    return nodes;
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv);
  Impl impl = parse_impl(o);
  bool q = o.quick();
  Params p{int(o.num("stretch", q ? 16 : 18)), int(o.num("long-lived", q ? 14 : 16)),
           int(o.num("array", 500000)), int(o.num("min-depth", 4)),
           int(o.num("max-depth", q ? 14 : 16))};
  init_impl(impl);
  if (impl == Impl::kTricolor) {
    size_t offs[] = {offsetof(Node, left), offsetof(Node, right)};
    g_node_type = gc_type_new("GCBenchNode", sizeof(Node), offs, 2);
  }
  uint64_t t0 = now_ns();
  long nodes = dispatch(impl, [&]<class M>() { return Bench<M>{p}.run(); });
  uint64_t wall = now_ns() - t0;
  char name[64];
  snprintf(name, sizeof name, "gcbench/%d-%d", p.stretch, p.long_lived);
  report(name, impl, wall, kv("nodes", (long long)nodes));
  return 0;
}
