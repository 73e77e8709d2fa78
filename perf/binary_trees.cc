// binary_trees: the Computer Language Benchmarks Game's binary-trees (depth 21 by default).
//
// Stresses: raw throughput of allocating 16-byte two-pointer nodes bottom-up and dropping
// whole trees; about 2^(depth+5) short-lived nodes, next to a long-lived tree of
// 2^(depth+1) nodes (64 MiB at depth 21) that every cycle must mark again. With
// --threads=N the trees of each depth are built by N threads at once (allocation from
// several mcaches, marking while several mutators run, stopping several threads).
// The malloc and mimalloc peers free every tree explicitly.
//
// Output: one RESULT line; `check` is the benchmark's checksum (the same for every impl).
//
//   binary_trees --impl=tricolor|bdwgc|malloc|mimalloc [--depth=21] [--threads=1] [--quick]
#include <thread>

#include "harness.h"

using namespace perf;

namespace {

using Node = TreeNode;

const gc_type* g_node_type = nullptr;

template <class M>
struct Trees {
  static Node* make(int depth) {
    Node* n = static_cast<Node*>(M::alloc(sizeof(Node), g_node_type));
    if (depth > 0) {
      Node* l = make(depth - 1);
      Node* r = make(depth - 1);
      M::store(&n->left, l);
      M::store(&n->right, r);
    } else {
      M::store(&n->left, nullptr);
      M::store(&n->right, nullptr);
    }
    return n;
  }
  // Walks without allocating: polls for a safepoint at each node, or a stop-the-world
  // request would wait for the whole walk (64 MiB of long-lived tree at depth 21).
  static long check(const Node* n) {
    M::poll();
    return n->left ? 1 + check(n->left) + check(n->right) : 1;
  }
  static void drop(Node* n) {
    if constexpr (M::kManual) {
      if (n->left) {
        drop(n->left);
        drop(n->right);
      }
      M::release(n);
    }
  }

  static long run(int max_depth, int threads) {
    const int min_depth = 4;
    long total = 0;
    {
      Node* stretch = make(max_depth + 1);
      total += check(stretch);
      drop(stretch);
    }
    Node* long_lived = make(max_depth);

    // Depth d: 2^(max_depth - d + min_depth) trees, split by iteration across threads.
    std::vector<long> sums(size_t(threads), 0);
    auto worker = [&](int tid) {
      typename M::ThreadScope scope;
      long sum = 0;
      for (int d = min_depth; d <= max_depth; d += 2) {
        long iters = 1L << (max_depth - d + min_depth);
        for (long i = tid; i < iters; i += threads) {
          Node* t = make(d);
          sum += check(t);
          drop(t);
        }
      }
      sums[size_t(tid)] = sum;
    };
    if (threads == 1) {
      worker(0);
    } else {
      std::vector<std::thread> ts;
      for (int t = 0; t < threads; t++) ts.emplace_back(worker, t);
      typename M::BlockingScope b;  // the main thread waits; the collector need not
      for (auto& t : ts) t.join();
    }
    for (long s : sums) total += s;
    total += check(long_lived);
    drop(long_lived);
    return total;
  }
};

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv);
  Impl impl = parse_impl(o);
  int depth = int(o.num("depth", o.quick() ? 18 : 21));
  int threads = int(o.num("threads", 1));
  if (depth < 4 || depth > 30 || threads < 1) Options::die("bad --depth or --threads");
  init_impl(impl);
  if (impl == Impl::kTricolor) {
    g_node_type = new_tree_node_type();
  }
  uint64_t t0 = now_ns();
  long sum = dispatch(impl, [&]<class M>() { return Trees<M>::run(depth, threads); });
  uint64_t wall = now_ns() - t0;
  char name[64];
  snprintf(name, sizeof name, "binary_trees/d%d/t%d", depth, threads);
  report(name, impl, wall, kv("check", (long long)sum));
  return 0;
}
