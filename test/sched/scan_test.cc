// Fiber stacks and the collector (lib/sched with gc/stacks.h): parked fibers' stacks keep
// their objects alive, running fibers allocate and mutate through cycles, attached threads
// beside the scheduler are unaffected.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gc/collector.h"
#include "gc/testing.h"
#include "os/clock.h"
#include "sched/fibers.h"
#include "sched/sched.h"
#include "tricolor/fiber.h"
#include "tricolor/gc.h"

using namespace tricolor::test;
using namespace tricolor::internal;

namespace {


[[gnu::noinline]] Node* make_list(uint64_t base, int n) {
  Node* head = nullptr;
  for (int i = 0; i < n; i++) {
    Node* x = new_node(base + i);
    gc_write_ptr(&x->left, head);
    head = x;
  }
  return head;
}

// Number of nodes of the list that are not intact.
[[gnu::noinline]] int broken_nodes(const Node* head, uint64_t base, int n) {
  int bad = 0, seen = 0;
  for (const Node* x = head; x && seen < n; x = x->left, seen++) {
    if (gc_base(x) != x || x->check != ~x->id || x->id != base + uint64_t(n - 1 - seen)) bad++;
  }
  return bad + (n - seen);
}

// A fiber holding a list only in its own locals while it is parked in gc_join.
struct Holder {
  gc_fiber* gate = nullptr;   // finishes when the churn is over
  uintptr_t hidden_head = 0;  // for the test's marked-bit check, hidden from the scan
  uint64_t base = 0;
  int len = 0;
  int broken = -1;
  std::atomic<bool> built{false};
};

void holder(void* a) {
  auto* h = static_cast<Holder*>(a);
  Node* head = make_list(h->base, h->len);
  h->hidden_head = hide(head);
  h->built = true;
  gc_join(h->gate);  // parked for the whole churn: only its stack holds the list
  h->broken = broken_nodes(head, h->base, h->len);
}

struct Gate {
  std::atomic<bool> open{false};
};
void gate_fiber(void* a) {
  auto* g = static_cast<Gate*>(a);
  while (!g->open.load()) gc_sleep(2000000);
}

struct Churn {
  int cycles = 0;
  int lists = 0;
  std::atomic<int> freed_checked{0};
  std::atomic<int> freed_ok{0};
  std::atomic<size_t> unexplained{0};  // kept by something other than a stack word
  std::vector<std::string> why;         // the retention probe's lines (churner 0 only)
};
struct Churner {
  Churn* c;
  int index;
};
// Churner 0 allocates Node lists and checks that the last one is reclaimed; the others
// allocate garbage of another size class, so nothing else reuses the freed Node slots
// before the check (a reused slot would look alive to gc_base).
void churner(void* a) {
  auto* ch = static_cast<Churner*>(a);
  Churn* c = ch->c;
  for (int i = 0; i < c->cycles; i++) {
    uintptr_t last = 0;
    for (int k = 0; k < c->lists; k++) {
      if (ch->index == 0) {
        last = hide(make_list(1u << 30, 200));
      } else {
        for (int j = 0; j < 200; j++) gc_alloc(64, nullptr);
      }
    }
    gc_collect();
    gc_collect();
    if (ch->index != 0) continue;
    c->freed_checked.fetch_add(1);
    if (freed(last)) {
      c->freed_ok.fetch_add(1);
      continue;
    }
    // Still there: collect again, and name what keeps it (a stale stack word may).
    size_t unexplained = 0;
    if (collect_until_freed({last}, 3, &c->why, &unexplained) == 0) c->freed_ok.fetch_add(1);
    c->unexplained += unexplained;
  }
}

}  // namespace

TEST_CASE("objects referenced only from parked fibers' stacks survive cycles while others "
          "churn", "[sched][scan]") {
  ensure_heap();
  const int nholders = scaled(64) < 8 ? 8 : scaled(64);
  std::vector<Holder> hs(nholders);
  Gate gate;
  Churn churn;
  churn.cycles = scaled(40) < 4 ? 4 : scaled(40);
  churn.lists = 20;
  gc_stats s0;
  gc_read_stats(&s0);
  int marked_by_scan = 0, unmarked_before_scan = 0;
  int rc = run_fibers(0, [&] {
    std::vector<gc_fiber*> fs, gates;
    for (int i = 0; i < nholders; i++) {
      gates.push_back(gc_go(gate_fiber, &gate));  // one each: a fiber is joined once
      hs[i].gate = gates.back();
      hs[i].base = uint64_t(i) << 20;
      hs[i].len = 100;
    }
    for (int i = 0; i < nholders; i++) fs.push_back(gc_go(holder, &hs[i]));
    // Wait until every holder is parked in gc_join.
    for (int i = 0; i < nholders; i++)
      while (!sched_fiber_waiting(fs[i])) gc_sleep(100000);

    // One cycle by hand (gc/testing.h): the heads are white until the parked stacks are
    // scanned, black after.
    test_set_hold(true);
    test_start_cycle();
    for (auto& h : hs) unmarked_before_scan += !test_is_marked(unhide(h.hidden_head));
    test_scan_parked_stacks();
    test_drain_all();
    for (auto& h : hs) marked_by_scan += test_is_marked(unhide(h.hidden_head));
    test_set_hold(false);
    test_wait_cycle_done();

    // Then many cycles while other fibers allocate.
    std::vector<gc_fiber*> cs;
    Churner chs[4] = {{&churn, 0}, {&churn, 1}, {&churn, 2}, {&churn, 3}};
    for (auto& ch : chs) cs.push_back(gc_go(churner, &ch));
    for (gc_fiber* c : cs) gc_join(c);
    gate.open = true;  // each holder joins its own gate, then checks its list
    for (gc_fiber* f : fs) gc_join(f);
  });
  gc_stats s1;
  gc_read_stats(&s1);
  REQUIRE(rc == 0);
  CHECK(unmarked_before_scan > 0);
  CHECK(marked_by_scan == nholders);
  for (auto& h : hs) CHECK(h.broken == 0);
  // Each churner's gc_collect calls are sequential, each waits for a cycle of its own.
  CHECK(s1.num_gc - s0.num_gc >= uint32_t(2 * churn.cycles));
  // The churn's garbage was reclaimed (most lists; a stale word on a stack may keep one:
  // the probe's lines name each holder).
  std::string probe;
  for (const std::string& line : churn.why) probe += line + "\n";
  INFO(probe);
  CHECK(churn.freed_ok.load() * 2 > churn.freed_checked.load());
  CHECK(churn.unexplained.load() == 0);
  CHECK(verify_failures() == 0);
}

namespace {

// A ring of nodes with random cross edges (cycles everywhere), mutated by one fiber.
struct GraphCtx {
  int size = 0;
  int rounds = 0;
  uint64_t seed = 0;
  int broken = 0;
  long mutations = 0;
};

[[gnu::noinline]] int check_ring(Node* start, int size) {
  int bad = 0;
  Node* x = start;
  for (int i = 0; i < size; i++) {
    if (!x || gc_base(x) != x || x->check != ~x->id) return bad + 1;
    if (x->right && (gc_base(x->right) != x->right || x->right->check != ~x->right->id)) bad++;
    x = x->left;
  }
  return bad + (x != start);  // still a ring of `size`
}

void graph_fiber(void* a) {
  auto* c = static_cast<GraphCtx*>(a);
  std::mt19937_64 rng(c->seed);
  uint64_t id = c->seed << 24;
  // The ring is kept in a heap array object too (an edge from the heap into the cycle).
  Node** slots = static_cast<Node**>(gc_alloc(sizeof(Node*) * c->size, nullptr));
  for (int i = 0; i < c->size; i++) gc_write_ptr(&slots[i], new_node(id++));
  for (int i = 0; i < c->size; i++) {
    gc_write_ptr(&slots[i]->left, slots[(i + 1) % c->size]);
    gc_write_ptr(&slots[i]->right, slots[rng() % c->size]);
  }
  for (int r = 0; r < c->rounds; r++) {
    for (int k = 0; k < 16; k++) {
      int i = int(rng() % c->size);
      switch (rng() % 3) {
        case 0: {  // replace node i by a fresh one, keeping the ring
          Node* fresh = new_node(id++);
          Node* prev = slots[(i + c->size - 1) % c->size];
          gc_write_ptr(&fresh->left, slots[i]->left);
          gc_write_ptr(&fresh->right, slots[i]->right);
          gc_write_ptr(&prev->left, fresh);
          gc_write_ptr(&slots[i], fresh);
          break;
        }
        case 1:  // a new cross edge
          gc_write_ptr(&slots[i]->right, slots[rng() % c->size]);
          break;
        default:  // a detached cycle of garbage hanging off nothing
          Node* g1 = new_node(id++);
          Node* g2 = new_node(id++);
          gc_write_ptr(&g1->left, g2);
          gc_write_ptr(&g2->left, g1);
          gc_write_ptr(&g1->right, slots[i]);
          break;
      }
      c->mutations++;
    }
    if (r % 4 == 0) gc_yield();
    if (r % 16 == 0) c->broken += check_ring(slots[0], c->size);
  }
  c->broken += check_ring(slots[0], c->size);
}

}  // namespace

TEST_CASE("hundreds of fibers mutate cyclic graphs through back-to-back cycles",
          "[sched][scan]") {
  ensure_heap();
  const int nfibers = scaled(200) < 50 ? 50 : scaled(200);
  std::vector<GraphCtx> cs(nfibers);
  for (int i = 0; i < nfibers; i++) {
    cs[i].size = 64;
    cs[i].rounds = scaled(200) < 40 ? 40 : scaled(200);
    cs[i].seed = uint64_t(i) + 1;
  }
  gc_stats s0;
  gc_read_stats(&s0);
  int old_pct = gc_set_percent(5);
  // An attached thread that never uses fibers keeps allocating and checking beside them.
  std::atomic<bool> stop{false};
  std::atomic<int> thread_broken{0};
  std::atomic<long> thread_rounds{0};
  std::thread plain([&] {
    gc_thread_attach();
    while (!stop.load()) {
      Node* l = make_list(7u << 28, 500);
      gc_safepoint();
      thread_broken += broken_nodes(l, 7u << 28, 500);
      thread_rounds++;
    }
    gc_thread_detach();
  });
  std::atomic<bool> mutators_done{false};
  int rc = run_fibers(0, [&] {
    std::vector<gc_fiber*> fs;
    for (auto& c : cs) fs.push_back(gc_go(graph_fiber, &c));
    // Cycles back to back while the graphs change, whatever the pacer would do, until the
    // fibers are done and the plain thread has finished a round beside them.
    struct Until {
      std::atomic<bool>* done;
      std::atomic<long>* rounds;
    } until{&mutators_done, &thread_rounds};
    gc_fiber* collector = gc_go([](void* a) {
      auto* u = static_cast<Until*>(a);
      for (int i = 0; i < 3 || !u->done->load() || u->rounds->load() == 0; i++) gc_collect();
    }, &until);
    for (gc_fiber* f : fs) gc_join(f);
    mutators_done = true;
    gc_join(collector);
  });
  stop = true;
  gc_blocking_begin();
  plain.join();
  gc_blocking_end();
  gc_set_percent(old_pct);
  gc_stats s1;
  gc_read_stats(&s1);
  REQUIRE(rc == 0);
  long mutations = 0;
  int broken = 0;
  for (auto& c : cs) {
    mutations += c.mutations;
    broken += c.broken;
  }
  CHECK(broken == 0);
  CHECK(mutations == long(nfibers) * cs[0].rounds * 16);
  CHECK(thread_broken.load() == 0);
  CHECK(thread_rounds.load() > 0);
  INFO("cycles during the run: " << s1.num_gc - s0.num_gc);
  CHECK(s1.num_gc - s0.num_gc >= 3);
  CHECK(verify_failures() == 0);
}
