// mark: what a full collection of a heap that does not change costs.
//
// Stresses the marker alone: a heap of 16-byte two-pointer nodes is built once, then
// `--collections` full collections are forced (tricolor: gc_collect, whose cycle marks with
// the workers and the controller and returns after the caller's sweep; bdwgc: GC_gcollect,
// a stop-the-world mark and a lazy sweep), and nothing else runs. Every node stays live, so
// each collection marks the whole heap again and frees nothing: the figures are the
// marker's throughput, as a program sees it when it calls for a collection.
//
//   --shape=tree    a binary tree of `--depth` levels built depth first: a child lies next
//                   to its parent, the marker's accesses follow the allocation order
//   --shape=random  `--nodes` nodes, each pointing at two nodes chosen at random, all held
//                   by one array (a large object): most pointers go to a line no recent
//                   access brought in, as in a hash table or a graph
//
// Output: one RESULT line; time_s is the collections' elapsed time, and the extra fields
// are ms_per_collection, cpu_ms_per_collection (the process's CPU time over the
// collections, every thread), ns_per_node (elapsed) and nodes.
//
//   mark --impl=tricolor|bdwgc [--shape=tree|random] [--depth=21] [--nodes=4194304]
//        [--collections=10] [--quick]
#include "harness.h"

using namespace perf;

namespace {

using Node = TreeNode;

const gc_type* g_node_type = nullptr;
void* volatile g_root = nullptr;  // the heap's one root (a tricolor root; bdwgc scans it)

template <class M>
Node* make_tree(int depth) {
  Node* n = static_cast<Node*>(M::alloc(sizeof(Node), g_node_type));
  if (depth > 0) {
    Node* l = make_tree<M>(depth - 1);
    Node* r = make_tree<M>(depth - 1);
    M::store(&n->left, l);
    M::store(&n->right, r);
  }
  return n;
}

template <class M>
Node** make_random(long nodes) {
  auto** all = static_cast<Node**>(M::alloc(sizeof(Node*) * size_t(nodes), nullptr));
  for (long i = 0; i < nodes; i++) {
    M::store(&all[i], M::alloc(sizeof(Node), g_node_type));
    if ((i & 1023) == 0) M::poll();
  }
  Rng rng(42);
  for (long i = 0; i < nodes; i++) {
    M::store(&all[i]->left, all[rng.next() % uint64_t(nodes)]);
    M::store(&all[i]->right, all[rng.next() % uint64_t(nodes)]);
    if ((i & 1023) == 0) M::poll();
  }
  return all;
}

template <class M>
void collect() {
  if constexpr (M::kImpl == Impl::kTricolor) {
    gc_collect();
  } else {
#if PERF_HAVE_BDWGC
    GC_gcollect();
#endif
  }
}

long count_tree(const Node* n) { return n->left ? 1 + count_tree(n->left) + count_tree(n->right) : 1; }

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv);
  Impl impl = parse_impl(o);
  if (impl != Impl::kTricolor && impl != Impl::kBdwgc)
    Options::die("mark measures a collector: --impl=tricolor or --impl=bdwgc");
  bool q = o.quick();
  std::string shape = o.str("shape", "tree");
  if (shape != "tree" && shape != "random") Options::die("--shape=%s: expected tree or random", shape.c_str());
  int depth = int(o.num("depth", q ? 16 : 21));
  long nodes = shape == "tree" ? (2L << depth) - 1 : long(o.num("nodes", q ? 65536 : 4194304));
  int collections = int(o.num("collections", q ? 3 : 10));
  if (depth < 0 || depth > 26 || nodes < 1 || collections < 1)
    Options::die("--depth must be 0..26, --nodes and --collections at least 1");
  init_impl(impl);
  if (impl == Impl::kTricolor) {
    g_node_type = new_tree_node_type();
    gc_add_root(const_cast<void**>(&g_root), sizeof g_root);
  }
  uint64_t wall = 0, cpu = 0;
  dispatch(impl, [&]<class M>() {
    if (shape == "tree") g_root = make_tree<M>(depth);
    else g_root = make_random<M>(nodes);
    collect<M>();  // the build's garbage (none) and the first marking, untimed
    uint64_t t0 = now_ns(), c0 = process_cpu_ns();
    for (int i = 0; i < collections; i++) collect<M>();
    wall = now_ns() - t0;
    cpu = process_cpu_ns() - c0;
    // The heap is intact: the tree's node count, or the last random node's pointers.
    if (shape == "tree" && count_tree(static_cast<Node*>(g_root)) != nodes)
      Options::die("mark: the tree did not survive");
    if (shape == "random") {
      Node* last = static_cast<Node**>(g_root)[nodes - 1];
      if (!last || !last->left || !last->right) Options::die("mark: the graph did not survive");
    }
    return 0;
  });
  char name[64];
  if (shape == "tree") snprintf(name, sizeof name, "mark/tree-d%d", depth);
  else snprintf(name, sizeof name, "mark/random-%ld", nodes);
  double per = double(wall) / collections;
  report(name, impl, wall,
         kv("ms_per_collection", per / 1e6) + " " +
             kv("cpu_ms_per_collection", double(cpu) / collections / 1e6) + " " +
             kv("ns_per_node", per / double(nodes)) + " " + kv("nodes", (long long)nodes));
  return 0;
}
