// perf/fibers.cc: what the fiber scheduler costs, against threads, in one run.
//
// Stresses: the context switch alone (lib/sched/context.S between two stacks, no scheduler),
// a yield (gc_yield between two fibers on one P: the scheduler and the switch), fiber creation
// (gc_go + run + gc_join of an empty fiber, one at a time and in batches of 1000), and a
// parallel allocating workload (binary-trees, the Benchmarks Game program) spread over
// fibers on 1 and on 2 P's, and over std::threads. The thread peers: a create+join of an
// empty std::thread, and a two-thread ping-pong through a futex (std::atomic wait/notify).
//
// Usage: fibers [--depth N] [--quick] [--only=fibers1p|fibers2p|threads1|threads2|switch|spawn|batch]
// (binary-trees depth, default 18; --only: one binary-trees run, or one micro-benchmark on
// 1 P, in-process, for a profiler)
// Output: one line per figure, `name value unit`, e.g. `fiber_yield_switch 41.2 ns`; ratios
// are unitless (`x`). Each configuration runs in its own child process (gc_init takes the
// number of P's once), so the figures of one run are comparable.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "sched/context.h"
#include "tricolor/fiber.h"
#include "tricolor/gc.h"

namespace {

int g_depth = 18;
bool g_quick = false;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void print(const char* name, double value, const char* unit) {
  printf("%s %.6g %s\n", name, value, unit);
  fflush(stdout);
}

// Median of `reps` runs of f(), which returns a figure.
template <class F>
double median(int reps, F f) {
  std::vector<double> v;
  for (int i = 0; i < reps; i++) v.push_back(f());
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// ---- Context switch ---------------------------------------------------------------------

struct YieldCtx {
  long n;
};
void yielder(void* a) {
  long n = static_cast<YieldCtx*>(a)->n;
  for (long i = 0; i < n; i++) gc_yield();
}

double fiber_yield_ns() {
  static double result;
  static long n;
  n = g_quick ? 200000 : 2000000;
  gc_run([](void*) {
    YieldCtx c{n};
    double t0 = now_s();
    gc_fiber* a = gc_go(yielder, &c);
    gc_fiber* b = gc_go(yielder, &c);
    gc_join(a);
    gc_join(b);
    result = (now_s() - t0) * 1e9 / double(2 * n);  // two switches per round trip
  }, nullptr);
  return result;
}

// The switch itself: tricolor_ctx_switch (context.S, compiled into this program) between
// the main stack and one made by ctx_make, n round trips; no scheduler, no heap. This is
// the figure of the register save and restore that every fiber switch pays; a yield adds
// the run queue and the stack hand-off to the collector.
void* g_ctx_main_sp = nullptr;
void* g_ctx_fiber_sp = nullptr;
[[noreturn]] void ctx_bouncer(void*, void*) {
  for (;;) tricolor_ctx_switch(&g_ctx_fiber_sp, g_ctx_main_sp);
}
double ctx_switch_ns() {
  static std::vector<char> stack(64 << 10);
  long n = g_quick ? 1000000 : 10000000;
  uintptr_t lo = reinterpret_cast<uintptr_t>(stack.data()), hi = lo + stack.size();
  g_ctx_fiber_sp = tricolor::internal::ctx_make(lo, hi, ctx_bouncer, nullptr, nullptr);
  double t0 = now_s();
  for (long i = 0; i < n; i++) tricolor_ctx_switch(&g_ctx_main_sp, g_ctx_fiber_sp);
  return (now_s() - t0) * 1e9 / double(2 * n);  // two switches per round trip
}

double thread_pingpong_ns() {
  long n = g_quick ? 20000 : 200000;
  std::atomic<int> turn{0};
  auto play = [&](int side) {
    for (long i = 0; i < n; i++) {
      int t;
      while ((t = turn.load(std::memory_order_acquire)) != side) turn.wait(t);
      turn.store(1 - side, std::memory_order_release);
      turn.notify_one();
    }
  };
  double t0 = now_s();
  std::thread a(play, 0), b(play, 1);
  a.join();
  b.join();
  return (now_s() - t0) * 1e9 / double(2 * n);
}

// ---- Spawn + run + join ------------------------------------------------------------------

void empty_fiber(void*) {}

double fiber_spawn_ns(int batch) {
  static double result;
  static int b;
  b = batch;
  gc_run([](void*) {
    long n = g_quick ? 100000 : 1000000;
    std::vector<gc_fiber*> fs(b);
    double t0 = now_s();
    for (long done = 0; done < n; done += b) {
      for (int i = 0; i < b; i++) fs[i] = gc_go(empty_fiber, nullptr);
      for (int i = 0; i < b; i++) gc_join(fs[i]);
    }
    result = (now_s() - t0) * 1e9 / double(n);
  }, nullptr);
  return result;
}

double thread_spawn_ns() {
  long n = g_quick ? 2000 : 20000;
  double t0 = now_s();
  for (long i = 0; i < n; i++) {
    std::thread t([] {});
    t.join();
  }
  return (now_s() - t0) * 1e9 / double(n);
}

// ---- binary-trees ---------------------------------------------------------------------------

struct Node {
  Node* left;
  Node* right;
};
const gc_type* g_node_type;

Node* bottom_up(int depth) {
  Node* n = static_cast<Node*>(gc_alloc(sizeof(Node), g_node_type));
  if (depth > 0) {
    gc_write_ptr(&n->left, bottom_up(depth - 1));
    gc_write_ptr(&n->right, bottom_up(depth - 1));
  }
  return n;
}

long check(const Node* n) { return n->left ? 1 + check(n->left) + check(n->right) : 1; }

// One unit of work: `iters` trees of depth `d`.
struct Chunk {
  int d;
  long iters;
  long sum;
};

void run_chunk(Chunk* c) {
  long s = 0;
  for (long i = 0; i < c->iters; i++) s += check(bottom_up(c->d));
  c->sum = s;
}

std::vector<Chunk> make_chunks(int max_depth) {
  std::vector<Chunk> cs;
  for (int d = 4; d <= max_depth; d += 2) {
    long iters = 1L << (max_depth - d + 4);
    long per = std::max<long>(1, iters / 16);  // 16 chunks per depth
    for (long done = 0; done < iters; done += per) cs.push_back(Chunk{d, std::min(per, iters - done), 0});
  }
  return cs;
}

long total(const std::vector<Chunk>& cs) {
  long s = 0;
  for (auto& c : cs) s += c.sum;
  return s;
}

// The program's own shape: a stretch tree, a long-lived tree, then the chunks in parallel.
double binary_trees_fibers(long* checksum) {
  static std::vector<Chunk> cs;
  static double result;
  cs = make_chunks(g_depth);
  double t0 = now_s();
  gc_run([](void*) {
    check(bottom_up(g_depth + 1));
    Node* long_lived = bottom_up(g_depth);
    std::vector<gc_fiber*> fs;
    for (auto& c : cs) fs.push_back(gc_go([](void* a) { run_chunk(static_cast<Chunk*>(a)); }, &c));
    for (gc_fiber* f : fs) gc_join(f);
    cs[0].sum += check(long_lived) - check(long_lived);
  }, nullptr);
  result = now_s() - t0;
  *checksum = total(cs);
  return result;
}

double binary_trees_threads(int nthreads, long* checksum) {
  std::vector<Chunk> cs = make_chunks(g_depth);
  std::atomic<size_t> next{0};
  double t0 = now_s();
  check(bottom_up(g_depth + 1));
  Node* long_lived = bottom_up(g_depth);
  std::vector<std::thread> ts;
  for (int i = 0; i < nthreads; i++)
    ts.emplace_back([&] {
      gc_thread_attach();
      for (size_t k; (k = next.fetch_add(1)) < cs.size();) run_chunk(&cs[k]);
      gc_thread_detach();
    });
  gc_blocking_begin();
  for (auto& t : ts) t.join();
  gc_blocking_end();
  cs[0].sum += check(long_lived) - check(long_lived);
  *checksum = total(cs);
  return now_s() - t0;
}

// ---- Configurations, each in a child process ------------------------------------------------

void init_heap(int procs) {
  gc_options o;
  gc_options_default(&o);
  o.procs = procs;
  if (gc_init(&o) != 0) exit(1);
  size_t offs[] = {offsetof(Node, left), offsetof(Node, right)};
  g_node_type = gc_type_new("TreeNode", sizeof(Node), offs, 2);
}

void config_one_p() {
  init_heap(1);
  int reps = g_quick ? 3 : 5;
  print("fiber_ctx_switch", median(reps, ctx_switch_ns), "ns");
  print("fiber_yield_switch", median(reps, fiber_yield_ns), "ns");
  print("fiber_spawn_join", median(reps, [] { return fiber_spawn_ns(1); }), "ns");
  print("fiber_spawn_join_batch1000", median(reps, [] { return fiber_spawn_ns(1000); }), "ns");
  long sum = 0;
  double t = median(g_quick ? 1 : 3, [&] { return binary_trees_fibers(&sum); });
  print("binary_trees_fibers_1p", t, "s");
  print("binary_trees_checksum", double(sum), "nodes");
}

void config_two_p() {
  init_heap(2);
  int reps = g_quick ? 3 : 5;
  print("thread_pingpong_switch", median(reps, thread_pingpong_ns), "ns");
  print("thread_spawn_join", median(reps, thread_spawn_ns), "ns");
  long sum_f = 0, sum_t = 0, sum_t1 = 0;
  int breps = g_quick ? 1 : 3;
  double f2 = median(breps, [&] { return binary_trees_fibers(&sum_f); });
  double t2 = median(breps, [&] { return binary_trees_threads(2, &sum_t); });
  double t1 = median(breps, [&] { return binary_trees_threads(1, &sum_t1); });
  print("binary_trees_fibers_2p", f2, "s");
  print("binary_trees_threads_2", t2, "s");
  print("binary_trees_threads_1", t1, "s");
  if (sum_f != sum_t || sum_t != sum_t1) {
    fprintf(stderr, "binary-trees checksums differ: %ld %ld %ld\n", sum_f, sum_t, sum_t1);
    exit(1);
  }
}

int run_child(void (*fn)()) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    fn();
    fflush(stdout);
    _exit(0);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* only = nullptr;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--depth") && i + 1 < argc) g_depth = atoi(argv[++i]);
    else if (!strncmp(argv[i], "--depth=", 8)) g_depth = atoi(argv[i] + 8);
    else if (!strcmp(argv[i], "--quick")) g_quick = true;
    else if (!strncmp(argv[i], "--only=", 7)) only = argv[i] + 7;
    else {
      fprintf(stderr, "usage: %s [--depth N] [--quick] [--only=fibers1p|fibers2p|threads1|threads2|switch|spawn|batch]\n",
              argv[0]);
      return 2;
    }
  }
  if (g_depth < 6) g_depth = 6;
  print("binary_trees_depth", g_depth, "levels");
  if (only && (!strcmp(only, "switch") || !strcmp(only, "spawn") || !strcmp(only, "batch"))) {
    init_heap(1);  // one micro-benchmark on 1 P in this process, for a profiler
    if (!strcmp(only, "switch")) print("fiber_yield_switch", fiber_yield_ns(), "ns");
    else print(only, fiber_spawn_ns(!strcmp(only, "spawn") ? 1 : 1000), "ns");
    return 0;
  }
  if (only) {  // one binary-trees run in this process, for a profiler
    long sum = 0;
    bool fibers = !strncmp(only, "fibers", 6);
    int n = only[strlen(only) - (fibers ? 2 : 1)] - '0';
    if (n < 1 || n > 2 || (!fibers && strncmp(only, "threads", 7))) {
      fprintf(stderr, "--only: fibers1p, fibers2p, threads1, threads2, switch, spawn or batch\n");
      return 2;
    }
    init_heap(fibers ? n : 2);
    double t = fibers ? binary_trees_fibers(&sum) : binary_trees_threads(n, &sum);
    print(only, t, "s");
    return 0;
  }
  int rc = run_child(config_one_p);
  rc |= run_child(config_two_p);
  return rc;
}
