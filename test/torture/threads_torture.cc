// Threads torture: mutator threads build, share, rewire and tear down random object graphs
// while the collector runs cycles back to back (low GOGC, forced cycles, the heap
// verifier after every mark termination). Every edge records its target's identity and
// every traversal checks it (graph.h), so a live object that is freed, or a slot reused
// while reachable, stops the run with a report naming the edge.
//
//   threads_torture SECONDS [--threads N] [--seed S] [--gogc P] [--no-verify]
//
// Operations, chosen at random by each worker:
//   insert   allocate a node or blob (tiny, small, large, precise or conservative) and link
//            it under a node the worker owns, or into a root slot
//   delete   clear an edge or a root slot
//   rewire   point an edge at another node met on the walk: DAGs and cycles
//   walk     follow random edges from a root, checking every target
//   stack    build a chain held only in stack variables (some as interior pointers) across
//            allocations, safepoints and yields (gc_yield on a fiber: the fiber parks and
//            may resume on another thread), check it, then drop or link it
//   send     move a subgraph to another thread through the exchange, a heap object whose
//            slots are edges written with gc_write_ptr; its nodes change owner
//   receive  take a subgraph from the exchange and link it in
//   share    publish a node for every thread to read (an exchange slot), or link a
//            published one: edges between threads' graphs, read while their owner
//            rewrites them
//   block    a blocking region (sleep), or a yield on a fiber, with pointers held on the
//            stack across it
//   churn    short-lived garbage
//   verify   (every few thousand operations) a full traversal of the worker's graph
// A churn thread keeps creating short-lived attached threads (attach, allocate, hand a
// subgraph over, detach), and the main thread forces a cycle every few milliseconds.
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "gc/checkmark.h"
#include "tricolor/fiber.h"
#include "gc/collector.h"
#include "graph.h"

using namespace torture;

namespace {

constexpr int kRoots = 48;          // root slots per worker
constexpr int kMail = 32;           // mailbox slots
constexpr int kShared = 16;         // published nodes
constexpr int kScratch = 1 << 16;   // DFS stack of a full verification (a registered root)
constexpr int kMaxWalk = 48;

struct Slot {
  void* ptr;
  uint64_t id;
};

// The exchange: mail (moved subgraphs) and published nodes, as the edges of one heap node
// (edges 0 .. kMail-1: mail, then kShared published nodes), written with write_edge
// (gc_write_ptr, the target's id beside it). Only a registered root slot, g_ex_root, holds
// the node; now and then a sender replaces it by a fresh copy and the old one becomes
// garbage. Guarded by g_exchange_mu, which is only waited for inside a blocking region.
constexpr uint32_t kExEdges = kMail + kShared;
Slot g_ex_root;
const gc_type* g_ex_type;
std::atomic<uint32_t> g_ex_serial{0};
std::mutex g_exchange_mu;

// The exchange node, checked against its identity (lock held).
Node* exchange() {
  return check_object(g_ex_root.ptr, g_ex_root.id, From{"root", &g_ex_root, 0, 0});
}

// A new, empty exchange node (allocated before taking the lock: allocation may collect).
Node* new_exchange(uint64_t* id) {
  Node* n = static_cast<Node*>(gc_alloc(sizeof(Node) + kExEdges * sizeof(Edge), g_ex_type));
  if (!n) fail("gc_alloc of the exchange returned NULL");
  *id = make_id(kNodeKind, 0, kExEdges, g_ex_serial.fetch_add(1) + 1);
  n->id = *id;
  n->nedges = kExEdges;
  n->layout = kPrecise;
  n->check = node_check(*id, kExEdges, kPrecise);
  n->owner.store(kTransit, std::memory_order_relaxed);
  return n;
}

void lock_exchange() {
  gc_blocking_begin();
  g_exchange_mu.lock();
  gc_blocking_end();
}

// Slot i of the exchange (lock held), checked against the id recorded beside it.
Slot exchange_read(Node* ex, uint32_t i) {
  Ref r;
  if (!read_edge(ex, i, &r)) fail("exchange edge %u: seqlock odd while the lock is held", i);
  if (r.p) check_object(r.p, r.id, From{i < kMail ? "mail" : "shared", ex, ex->id, i});
  return {r.p, r.id};
}

// Lets other fibers (on a fiber: it parks, and may resume on another thread) or threads run.
void yield_now() {
  if (gc_fiber_self()) gc_yield();
  else sched_yield();
}

std::atomic<bool> g_stop{false};
std::atomic<uint32_t> g_next_thread{1};

enum Op { kInsert, kDelete, kRewire, kWalk, kStack, kSend, kReceive, kShare, kBlock, kChurn,
          kVerify, kNumOps };
const char* kOpNames[kNumOps] = {"insert", "delete", "rewire", "walk", "stack", "send",
                                 "receive", "share", "block", "churn", "verify"};
std::atomic<uint64_t> g_ops[kNumOps];
std::atomic<uint64_t> g_checked{0};     // objects checked against their recorded identity
std::atomic<uint64_t> g_allocs{0};
std::atomic<uint64_t> g_churn_threads{0};
uint32_t g_disabled = 0;  // --without: operations replaced by walks (to narrow a failure)
bool g_churn = true;

struct Worker {
  uint32_t me;               // owner id (unique per thread, ever)
  Rng rng;
  uint32_t serial = 0;
  Slot* roots;               // kRoots, registered root
  Slot* scratch;             // kScratch, registered root
  uint64_t ops[kNumOps] = {};
  uint64_t checked = 0, allocs = 0;
  size_t last_count = 0;     // objects reached by the last full verification

  explicit Worker(uint64_t seed) : me(g_next_thread.fetch_add(1)), rng(seed ^ me) {
    roots = static_cast<Slot*>(calloc(kRoots, sizeof(Slot)));
    scratch = static_cast<Slot*>(calloc(kScratch, sizeof(Slot)));
    gc_add_root(roots, kRoots * sizeof(Slot));
    gc_add_root(scratch, kScratch * sizeof(Slot));
    t_thread = me;
  }
  ~Worker() {
    gc_remove_root(roots);
    gc_remove_root(scratch);
    free(roots);
    free(scratch);
    for (int i = 0; i < kNumOps; i++) g_ops[i].fetch_add(ops[i]);
    g_checked.fetch_add(checked);
    g_allocs.fetch_add(allocs);
  }

  Node* check(void* p, uint64_t id, const From& f) {
    checked++;
    return check_object(p, id, f);
  }

  void* alloc_any(uint64_t* id, bool blob_ok = true) {
    allocs++;
    if (blob_ok && rng.one_in(3)) return new_blob(rng, me, ++serial, id);
    return new_node(rng, me, ++serial, me, id);
  }

  // A random walk from a random non-empty root. Fills path (nodes only, checked) and
  // returns its length.
  int walk(Node** path, uint64_t* ids, int max) {
    int start = int(rng.below(kRoots));
    Slot s = roots[start];
    if (!s.ptr) return 0;
    Node* n = check(s.ptr, s.id, From{"root", &roots[start], 0, uint32_t(start)});
    int len = 0;
    while (n && len < max) {
      path[len] = n;
      ids[len] = s.id;
      len++;
      if (n->nedges == 0) break;
      uint32_t i = rng.below(n->nedges);
      Ref r;
      if (!read_edge(n, i, &r) || !r.p) break;
      Node* next = check(r.p, r.id, From{"edge", n, n->id, i});
      s = {r.p, r.id};
      n = next;
    }
    return len;
  }

  bool owns(Node* n) { return n->owner.load(std::memory_order_relaxed) == me; }

  // A node on a fresh walk that this thread owns and that has edges.
  int pick_owned(Node** path, uint64_t* ids) {
    int len = walk(path, ids, kMaxWalk);
    for (int k = 0; k < 4 && len; k++) {
      int j = int(rng.below(uint32_t(len)));
      if (owns(path[j]) && path[j]->nedges) return j;
    }
    return -1;
  }

  void op_insert() {
    uint64_t id;
    void* p = alloc_any(&id);
    if (id_kind(id) == kNodeKind) {
      // Link a few of its edges to nodes met on a walk (sharing and cycles).
      Node* n = static_cast<Node*>(p);
      Node* path[kMaxWalk];
      uint64_t ids[kMaxWalk];
      int len = walk(path, ids, 8);
      for (uint32_t i = 0; i < n->nedges && i < 4 && len; i++) {
        int j = int(rng.below(uint32_t(len)));
        write_edge(n, i, path[j], ids[j]);
      }
    }
    Node* path[kMaxWalk];
    uint64_t ids[kMaxWalk];
    int j = rng.one_in(4) ? -1 : pick_owned(path, ids);
    if (j < 0) {
      int r = int(rng.below(kRoots));
      if (!roots[r].ptr || rng.one_in(8)) roots[r] = {p, id};  // plain stores: a root
      return;
    }
    write_edge(path[j], rng.below(path[j]->nedges), p, id);
  }

  void op_delete() {
    if (rng.one_in(6)) {
      int r = int(rng.below(kRoots));
      roots[r] = {nullptr, 0};
      return;
    }
    Node* path[kMaxWalk];
    uint64_t ids[kMaxWalk];
    int j = pick_owned(path, ids);
    if (j >= 0) write_edge(path[j], rng.below(path[j]->nedges), nullptr, 0);
  }

  void op_rewire() {
    Node* path[kMaxWalk];
    uint64_t ids[kMaxWalk];
    int len = walk(path, ids, kMaxWalk);
    if (len < 1) return;
    int from = int(rng.below(uint32_t(len)));
    if (!owns(path[from]) || !path[from]->nedges) return;
    // Another walk's node, or an ancestor on this path (a cycle).
    Node* other[kMaxWalk];
    uint64_t oids[kMaxWalk];
    int olen = rng.one_in(2) ? walk(other, oids, kMaxWalk) : 0;
    Node* to;
    uint64_t to_id;
    if (olen) {
      int k = int(rng.below(uint32_t(olen)));
      to = other[k];
      to_id = oids[k];
    } else {
      int k = int(rng.below(uint32_t(from + 1)));
      to = path[k];
      to_id = ids[k];
    }
    write_edge(path[from], rng.below(path[from]->nedges), to, to_id);
  }

  void op_walk() {
    Node* path[kMaxWalk];
    uint64_t ids[kMaxWalk];
    walk(path, ids, kMaxWalk);
  }

  // Objects held only in stack variables across allocations, safepoints and yields.
  [[gnu::noinline]] void op_stack() {
    constexpr int kMax = 40;
    void* volatile held[kMax];        // base pointers
    char* volatile inner[kMax];       // interior pointers, base dropped
    uint64_t ids[kMax];
    uint32_t offs[kMax];
    int k = 4 + int(rng.below(kMax - 4));
    bool on_fiber = gc_fiber_self() != nullptr;
    for (int i = 0; i < k; i++) {
      uint64_t id;
      void* p = alloc_any(&id);
      ids[i] = id;
      if (id_kind(id) == kNodeKind && i > 0 && rng.one_in(2)) {
        Node* n = static_cast<Node*>(p);
        if (n->nedges && held[i - 1]) write_edge(n, 0, held[i - 1], ids[i - 1]);
      }
      if (rng.one_in(3) && gc_size(p) > 16) {
        offs[i] = 8 * (1 + rng.below(uint32_t(std::min<size_t>(gc_size(p), 4096) / 8 - 1)));
        inner[i] = static_cast<char*>(p) + offs[i];
        held[i] = nullptr;
      } else {
        offs[i] = 0;
        inner[i] = nullptr;
        held[i] = p;
      }
      p = nullptr;
      for (uint32_t g = rng.below(6); g > 0; g--) {  // garbage in between
        uint64_t gid;
        alloc_any(&gid);
      }
      gc_safepoint();
      if (rng.one_in(on_fiber ? 4 : 16)) yield_now();
    }
    if (on_fiber) gc_yield();
    if (rng.one_in(8)) gc_collect();
    for (int i = 0; i < k; i++) {
      void* p = held[i] ? held[i] : static_cast<char*>(inner[i]) - offs[i];
      check(p, ids[i], From{"stack", const_cast<void**>(&held[i]), 0, uint32_t(i)});
    }
    // Link one into the graph, or drop them all.
    if (rng.one_in(2)) {
      int i = int(rng.below(uint32_t(k)));
      void* p = held[i] ? held[i] : static_cast<char*>(inner[i]) - offs[i];
      int r = int(rng.below(kRoots));
      if (!roots[r].ptr) roots[r] = {p, ids[i]};
    }
  }

  // Moves the ownership of the nodes reachable from root (bounded) from `from` to `to`:
  // give_away marks this thread's nodes as in transit, take_over claims nodes in transit.
  void transfer(Node* root, uint32_t from, uint32_t to) {
    Node* q[64];
    int n = 0;
    q[n++] = root;
    for (int h = 0; h < n; h++) {
      Node* x = q[h];
      uint32_t expect = from;
      if (!x->owner.compare_exchange_strong(expect, to, std::memory_order_relaxed)) continue;
      for (uint32_t i = 0; i < x->nedges && i < 8 && n < 64; i++) {
        Ref r;
        if (read_edge(x, i, &r) && r.p && id_kind(r.id) == kNodeKind)
          q[n++] = check(r.p, r.id, From{"edge", x, x->id, i});
      }
    }
  }
  void give_away(Node* root) { transfer(root, me, kTransit); }
  void take_over(Node* root) { transfer(root, kTransit, me); }

  void op_send() {
    Node* path[kMaxWalk];
    uint64_t ids[kMaxWalk];
    int j = pick_owned(path, ids);
    if (j < 0) return;
    Node* parent = path[j];
    uint32_t i = rng.below(parent->nedges);
    Ref r;
    if (!read_edge(parent, i, &r) || !r.p || id_kind(r.id) != kNodeKind) return;
    Node* child = check(r.p, r.id, From{"edge", parent, parent->id, i});
    if (!owns(child)) return;
    give_away(child);
    // Now and then the exchange moves to a fresh node (allocated outside the lock).
    uint64_t fresh_id = 0;
    Node* fresh = rng.one_in(64) ? new_exchange(&fresh_id) : nullptr;
    lock_exchange();
    Node* ex = exchange();
    if (fresh) {
      for (uint32_t e = 0; e < kExEdges; e++) {
        Slot s = exchange_read(ex, e);
        write_edge(fresh, e, s.ptr, s.id);
      }
      g_ex_root = {fresh, fresh_id};  // a root: plain stores
      ex = fresh;
    }
    uint32_t slot = rng.below(kMail);
    bool posted = false;
    if (!exchange_read(ex, slot).ptr) {
      write_edge(ex, slot, child, r.id);
      posted = true;
    }
    g_exchange_mu.unlock();
    // Cut it out of this graph (other paths to it may remain: they only read it now).
    if (posted) write_edge(parent, i, nullptr, 0);
    else take_over(child);
  }

  void op_receive() {
    lock_exchange();
    Node* ex = exchange();
    uint32_t slot = rng.below(kMail);
    Slot got = exchange_read(ex, slot);
    if (got.ptr) write_edge(ex, slot, nullptr, 0);
    g_exchange_mu.unlock();
    if (!got.ptr) return;
    // Held only by this stack now, until linked below.
    Node* n = check(got.ptr, got.id, From{"mail", ex, 0, slot});
    take_over(n);
    Node* path[kMaxWalk];
    uint64_t ids[kMaxWalk];
    int j = pick_owned(path, ids);
    if (j >= 0) write_edge(path[j], rng.below(path[j]->nedges), got.ptr, got.id);
    else roots[rng.below(kRoots)] = got;
  }

  void op_share() {
    if (rng.one_in(2)) {
      // Publish a node of ours (it stays ours: others only read it).
      Node* path[kMaxWalk];
      uint64_t ids[kMaxWalk];
      int len = walk(path, ids, 6);
      if (!len) return;
      int j = int(rng.below(uint32_t(len)));
      lock_exchange();
      write_edge(exchange(), kMail + rng.below(kShared), path[j], ids[j]);
      g_exchange_mu.unlock();
      return;
    }
    lock_exchange();
    Node* ex = exchange();
    uint32_t k = kMail + rng.below(kShared);
    Slot s = exchange_read(ex, k);
    g_exchange_mu.unlock();
    if (!s.ptr) return;
    checked++;
    Node* path[kMaxWalk];
    uint64_t ids[kMaxWalk];
    int j = pick_owned(path, ids);
    if (j >= 0) write_edge(path[j], rng.below(path[j]->nedges), s.ptr, s.id);
  }

  [[gnu::noinline]] void op_block() {
    Node* path[kMaxWalk];
    uint64_t ids[kMaxWalk];
    int len = walk(path, ids, 8);
    if (gc_fiber_self() && rng.one_in(2)) {
      gc_yield();
    } else {
      gc_blocking_begin();
      usleep(rng.below(300));
      gc_blocking_end();
    }
    for (int i = 0; i < len; i++) check(path[i], ids[i], From{"stack", &path[i], 0, uint32_t(i)});
  }

  void op_churn() {
    for (uint32_t n = 1 + rng.below(32); n > 0; n--) {
      uint64_t id;
      alloc_any(&id);
    }
  }

  // Full traversal of everything reachable from this thread's roots (bounded). The DFS
  // stack is a registered root, so every pointer it holds stays live.
  void op_verify() {
    std::unordered_set<const void*> seen;  // addresses only: never dereferenced
    int top = 0;
    for (int r = 0; r < kRoots; r++) {
      Slot s = roots[r];
      if (!s.ptr) continue;
      check(s.ptr, s.id, From{"root", &roots[r], 0, uint32_t(r)});
      scratch[top++] = s;
    }
    size_t reached = 0;
    while (top > 0 && reached < 200000) {
      Slot s = scratch[--top];
      scratch[top] = {nullptr, 0};
      if (!seen.insert(s.ptr).second) continue;
      reached++;
      if (id_kind(s.id) != kNodeKind) continue;
      Node* n = static_cast<Node*>(s.ptr);
      for (uint32_t i = 0; i < n->nedges; i++) {
        Ref r;
        if (!read_edge(n, i, &r) || !r.p) continue;
        check(r.p, r.id, From{"edge", n, n->id, i});
        if (top < kScratch && !seen.count(r.p)) scratch[top++] = {r.p, r.id};
      }
      if ((reached & 1023) == 0) gc_safepoint();
    }
    while (top > 0) scratch[--top] = {nullptr, 0};
    last_count = reached;
  }

  void step() {
    uint32_t x = rng.below(1000);
    Op op;
    // Bias towards deletion when the graph has grown large.
    bool big = last_count > 60000;
    if (x < (big ? 150u : 230u)) op = kInsert;
    else if (x < 380) op = kDelete;
    else if (x < 500) op = kRewire;
    else if (x < 640) op = kWalk;
    else if (x < 690) op = kStack;
    else if (x < 740) op = kSend;
    else if (x < 790) op = kReceive;
    else if (x < 830) op = kShare;
    else if (x < 845) op = kBlock;
    else op = kChurn;
    if (g_disabled >> op & 1) op = kWalk;
    t_op = kOpNames[op];
    ops[op]++;
    switch (op) {
      case kInsert: op_insert(); break;
      case kDelete: op_delete(); break;
      case kRewire: op_rewire(); break;
      case kWalk: op_walk(); break;
      case kStack: op_stack(); break;
      case kSend: op_send(); break;
      case kReceive: op_receive(); break;
      case kShare: op_share(); break;
      case kBlock: op_block(); break;
      default: op_churn(); break;
    }
  }
};

void worker_main(uint64_t seed) {
  gc_thread_attach();
  {
    Worker w(seed);
    uint64_t n = 0;
    while (!g_stop.load(std::memory_order_relaxed)) {
      w.step();
      if (++n % 4000 == 0) {
        t_op = "verify";
        w.ops[kVerify]++;
        w.op_verify();
      }
    }
    t_op = "verify";
    w.ops[kVerify]++;
    w.op_verify();
  }
  gc_thread_detach();
}

// Fibers mode: each worker is a fiber that yields every few operations, so fibers
// interleave on the scheduler's threads (and move between them) mid-graph-edit.
int g_fibers = 0;
uint64_t g_seed = 0;
int g_seconds = 0;

void fiber_worker(void* arg) {
  Worker w(reinterpret_cast<uintptr_t>(arg));
  uint64_t n = 0;
  while (!g_stop.load(std::memory_order_relaxed)) {
    w.step();
    ++n;
    if (n % 8 == 0) gc_yield();
    if (n % 4000 == 0) {
      t_op = "verify";
      w.ops[kVerify]++;
      w.op_verify();
    }
  }
  t_op = "verify";
  w.ops[kVerify]++;
  w.op_verify();
}

void fibers_main(void* arg) {
  uint64_t* forced = static_cast<uint64_t*>(arg);
  std::vector<gc_fiber*> fs;
  for (int i = 0; i < g_fibers; i++) {
    gc_fiber* f = gc_go(fiber_worker, reinterpret_cast<void*>(uintptr_t(g_seed + uint64_t(i) * 7919)));
    if (!f) fail("gc_go returned NULL");
    fs.push_back(f);
  }
  Rng r(g_seed ^ 0xabc);
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(g_seconds);
  while (std::chrono::steady_clock::now() < end) {
    gc_sleep(uint64_t(2000 + r.below(20000)) * 1000);
    gc_collect();
    ++*forced;
  }
  g_stop.store(true);
  for (gc_fiber* f : fs) gc_join(f);
}

// Short-lived attached threads: attach, build a little graph on the stack, post it as
// mail, detach. Their stacks come and go during cycles.
void churn_main(uint64_t seed) {
  Rng r(seed);
  while (!g_stop.load(std::memory_order_relaxed)) {
    uint64_t s = r.next();
    std::thread th([s] {
      gc_thread_attach();
      {
        Worker w(s);
        t_op = "short-lived thread";
        for (int i = 0; i < 40; i++) {
          w.ops[kStack]++;
          w.op_stack();
          w.ops[kReceive]++;
          w.op_receive();  // takes mail, links it into its roots
          w.ops[kInsert]++;
          w.op_insert();
        }
        // Post one node back before leaving (a subgraph outliving its thread).
        uint64_t id;
        Node* n = new_node(w.rng, w.me, ++w.serial, kTransit, &id, 6);
        for (uint32_t i = 0; i < n->nedges; i++) {
          Slot s = w.roots[w.rng.below(kRoots)];
          if (s.ptr) write_edge(n, i, s.ptr, s.id);
        }
        n->owner.store(kTransit, std::memory_order_relaxed);
        lock_exchange();
        Node* ex = exchange();
        uint32_t slot = w.rng.below(kMail);
        if (!exchange_read(ex, slot).ptr) write_edge(ex, slot, n, id);
        g_exchange_mu.unlock();
        w.ops[kVerify]++;
        w.op_verify();
      }
      gc_thread_detach();
    });
    th.join();  // this thread is not attached: no blocking region needed
    g_churn_threads.fetch_add(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 20;
  int nthreads = 4;
  uint64_t seed = uint64_t(time(nullptr));
  int gogc = 15;
  bool verify = true;
  for (int i = 2; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) nthreads = atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = strtoull(argv[++i], nullptr, 0);
    else if (a == "--gogc" && i + 1 < argc) gogc = atoi(argv[++i]);
    else if (a == "--no-verify") verify = false;
    else if (a == "--fibers" && i + 1 < argc) g_fibers = atoi(argv[++i]);
    else if (a == "--checkmark") tricolor::internal::set_checkmark(true);
    else if (a == "--no-threads-churn") g_churn = false;
    else if (a == "--without" && i + 1 < argc) {
      std::string list = argv[++i];
      for (int k = 0; k < kNumOps; k++)
        if (list.find(kOpNames[k]) != std::string::npos) g_disabled |= 1u << k;
    }
    else {
      fprintf(stderr, "usage: %s SECONDS [--threads N] [--seed S] [--gogc P] [--no-verify]\n"
                      "       [--fibers N] [--checkmark] [--no-threads-churn] [--without op,op,...]\n", argv[0]);
      return 2;
    }
  }
  if (seconds < 1) seconds = 1;
  if (g_fibers > 0) printf("fibers mode: %d fiber workers instead of threads\n", g_fibers);
  printf("threads torture: %d s, %d workers, seed %" PRIu64 ", GOGC %d, verifier %s, check-mark %s\n",
         seconds, nthreads, seed, gogc, verify ? "on" : "off",
         tricolor::internal::checkmark_enabled() ? "on" : "off");
  fflush(stdout);

  gc_options o;
  gc_options_default(&o);
  o.gc_percent = gogc;
  if (gc_init(&o) != 0) return 1;
  tricolor::internal::set_verify_each_cycle(verify);
  make_node_types();
  {
    static size_t offs[kExEdges];
    for (uint32_t i = 0; i < kExEdges; i++) offs[i] = sizeof(Node) + i * sizeof(Edge);
    g_ex_type = gc_type_new("TortureExchange", sizeof(Node) + kExEdges * sizeof(Edge), offs,
                            kExEdges);
    gc_add_root(&g_ex_root, sizeof g_ex_root);
    uint64_t id;
    Node* ex = new_exchange(&id);
    g_ex_root = {ex, id};
  }

  std::thread churn;
  if (g_churn) churn = std::thread(churn_main, seed ^ 0xc0ffee);
  uint64_t forced = 0;
  if (g_fibers > 0) {
    // Fibers mode: the workers are fibers on the scheduler's threads; the main fiber
    // forces the cycles.
    g_seed = seed;
    g_seconds = seconds;
    if (gc_run(fibers_main, &forced) != 0) {
      fprintf(stderr, "TORTURE FAILURE: gc_run failed\n");
      return 1;
    }
  } else {
    std::vector<std::thread> ths;
    for (int i = 0; i < nthreads; i++) ths.emplace_back(worker_main, seed + uint64_t(i) * 7919);
    // The main thread forces cycles now and then, on top of the heap-triggered ones.
    Rng r(seed ^ 0xabc);
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end) {
      gc_blocking_begin();
      usleep(2000 + r.below(20000));
      gc_blocking_end();
      gc_collect();
      forced++;
    }
    g_stop.store(true);
    gc_blocking_begin();
    for (auto& t : ths) t.join();
    gc_blocking_end();
  }
  g_stop.store(true);
  gc_blocking_begin();
  if (churn.joinable()) churn.join();
  gc_blocking_end();
  gc_collect();

  gc_stats s;
  gc_read_stats(&s);
  uint64_t total = 0;
  for (auto& n : g_ops) total += n.load();
  printf("operations: %" PRIu64 " (", total);
  for (int i = 0; i < kNumOps; i++) printf("%s%s %" PRIu64, i ? ", " : "", kOpNames[i], g_ops[i].load());
  printf(")\n");
  printf("objects checked against their identity: %" PRIu64 "; allocated by the workers: %" PRIu64
         "; short-lived threads: %" PRIu64 "\n",
         g_checked.load(), g_allocs.load(), g_churn_threads.load());
  printf("GC cycles: %u (%u forced, %" PRIu64 " by this loop); heap verifier failures: %" PRIu64
         "; max pause %.2f ms\n",
         s.num_gc, s.num_forced_gc, forced, tricolor::internal::verify_failures(),
         double(s.pause_max_ns) / 1e6);
  if (tricolor::internal::checkmark_enabled())
    printf("check-mark: %" PRIu64 " re-marks, %" PRIu64 " objects re-marked, no miss\n",
           tricolor::internal::checkmark_runs(), tricolor::internal::checkmark_reached_total());
  if (tricolor::internal::verify_failures() != 0) {
    fprintf(stderr, "TORTURE FAILURE: the heap verifier found %" PRIu64 " violations\n",
            tricolor::internal::verify_failures());
    return 1;
  }
  if (s.num_gc < 2) {
    fprintf(stderr, "TORTURE FAILURE: only %u GC cycles ran\n", s.num_gc);
    return 1;
  }
  gc_shutdown();  // joins the collector's threads; the heap goes
  printf("threads torture: OK\n");
  return 0;
}
