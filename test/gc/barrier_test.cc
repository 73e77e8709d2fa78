// The hybrid write barrier: what a store shades in each phase, and the three scenarios of
// the design (proposal 17503) with a cycle held at the critical moment.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "gc/collector.h"
#include "gc/testing.h"
#include "gc/thread.h"
#include "support/heap.h"
#include "tricolor/gc.h"

using namespace tricolor::internal;
using namespace tricolor::test;

namespace {

struct Obj {
  Obj* a;
  Obj* b;
  uint64_t id;
  uint64_t check;
};

const gc_type* obj_type() {
  static const gc_type* t = [] {
    size_t offs[] = {offsetof(Obj, a), offsetof(Obj, b)};
    return gc_type_new("Obj", sizeof(Obj), offs, 2);
  }();
  return t;
}

Obj* new_obj(uint64_t id) {
  auto* o = static_cast<Obj*>(gc_alloc(sizeof(Obj), obj_type()));
  o->id = id;
  o->check = ~id;
  return o;
}

// RAII expectation scope (cppgc's ExpectWriteBarrierFires): turns the barrier flag on with
// no cycle running, and lets the test read what the calling thread's buffer recorded.
struct BarrierOnScope {
  BarrierOnScope() {
    gc_collect();  // no cycle in flight
    old_pct = gc_set_percent(-1);
    current_thread()->wbuf.n = 0;
    current_thread()->cache.black_lo = current_thread()->cache.black_hi = 0;  // no mark: none
    __atomic_store_n(&tricolor_barrier_on, 1, __ATOMIC_SEQ_CST);
  }
  ~BarrierOnScope() {
    __atomic_store_n(&tricolor_barrier_on, 0, __ATOMIC_SEQ_CST);
    current_thread()->wbuf.n = 0;
    gc_set_percent(old_pct);
  }
  bool recorded(const void* p) const {
    const WbBuf& b = current_thread()->wbuf;
    for (int i = 0; i < b.n; i++)
      if (b.buf[i] == reinterpret_cast<uintptr_t>(p)) return true;
    return false;
  }
  int count() const { return current_thread()->wbuf.n; }
  int old_pct;
};

// A thread the test steps through a scenario, one command at a time.
class Stepper {
 public:
  template <class F>
  explicit Stepper(F&& body) : th_([this, body] {
    gc_thread_attach();
    body(*this);
    gc_thread_detach();
  }) {}
  ~Stepper() {
    gc_blocking_begin();
    th_.join();
    gc_blocking_end();
  }
  // Called by the scenario thread: waits (in a blocking region) until the test says go.
  void wait_for(int step) {
    gc_blocking_begin();
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [&] { return step_ >= step; });
    g.unlock();
    gc_blocking_end();
  }
  // done(d), then wait_for(w), with the stack already parked when the test hears of d.
  void done_and_wait(int d, int w) {
    gc_blocking_begin();
    std::unique_lock<std::mutex> g(mu_);
    done_ = d;
    cv_.notify_all();
    cv_.wait(g, [&] { return step_ >= w; });
    g.unlock();
    gc_blocking_end();
  }
  void done(int step) {
    std::lock_guard<std::mutex> g(mu_);
    done_ = step;
    cv_.notify_all();
  }
  // Called by the test.
  void go(int step) {
    {
      std::lock_guard<std::mutex> g(mu_);
      step_ = step;
    }
    cv_.notify_all();
    gc_blocking_begin();
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [&] { return done_ >= step; });
    g.unlock();
    gc_blocking_end();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int step_ = 0, done_ = 0;
  std::thread th_;
};

Obj* g_roots[4];

// Out of line, so the unhidden address never lands in the test's own frame (which the
// collector scans conservatively).
[[gnu::noinline]] bool marked_h(uintptr_t h) { return test_is_marked(unhide(h)); }
[[gnu::noinline]] void shade_h(uintptr_t h) { test_shade(unhide(h)); }
[[gnu::noinline]] uint64_t check_of_h(uintptr_t h) { return static_cast<Obj*>(unhide(h))->check; }

}  // namespace

TEST_CASE("with the barrier off a store records nothing", "[gc][barrier]") {
  ensure_heap();
  gc_collect();
  Obj* x = new_obj(1);
  Obj* y = new_obj(2);
  int before = current_thread()->wbuf.n;
  gc_write_ptr(&x->a, y);
  REQUIRE(current_thread()->wbuf.n == before);
  REQUIRE(x->a == y);
}

TEST_CASE("with the barrier on a store shades the old and the new value", "[gc][barrier]") {
  ensure_heap();
  Obj* x = new_obj(1);
  Obj* old_v = new_obj(2);
  Obj* new_v = new_obj(3);
  gc_write_ptr(&x->a, old_v);
  {
    BarrierOnScope scope;
    gc_write_ptr(&x->a, new_v);
    REQUIRE(scope.recorded(old_v));
    REQUIRE(scope.recorded(new_v));
    REQUIRE(scope.count() == 2);
    REQUIRE(x->a == new_v);
    // Storing NULL over NULL shades nothing; storing into an empty slot shades the new value.
    gc_write_ptr(&x->b, nullptr);
    REQUIRE(scope.count() == 2);
    gc_write_ptr(&x->b, old_v);
    REQUIRE(scope.count() == 3);
  }
}

// Allocate-black through the allocation runs (mcache::Run): a run taken before the mark
// is marked for what it has left when the mark starts, a run taken during the mark is
// marked whole, and at mark termination the slots no object got go back to the span.
TEST_CASE("objects handed out during a mark are black from runs taken before and during it",
          "[gc][barrier][alloc]") {
  ensure_heap();
  gc_collect();  // no cycle in flight; every run given back
  const SpanClass sc = make_span_class(size_to_class(sizeof(Obj)), false);
  const mcache& cache = current_thread()->cache;
  const mcache::Run& r = cache.run[sc];
  // The run's end (the fast path may see a chunk of it: mcache::run_end).
  auto end = [&] { return cache.end_of_run(sc); };
  Obj* before = new_obj(1);
  while (end() - r.next < 2 * sizeof(Obj)) before = new_obj(1);  // a run with room left
  const uintptr_t left_from = r.next, left_to = end();
  uintptr_t before_h = hide(before);
  before = nullptr;
  test_set_hold(true);
  test_start_cycle();
  REQUIRE(__atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED) == 1);
  Obj* during = new_obj(2);
  REQUIRE(reinterpret_cast<uintptr_t>(during) == left_from);  // the old run's next slot
  CHECK(test_is_marked(during));
  CHECK(!marked_h(before_h));  // allocated before the mark: white until traced
  // Use the old run up and take new ones during the mark: every object is black.
  int white = 0;
  std::vector<uintptr_t> late;
  while (late.size() < 600 || r.next == end()) {
    Obj* o = new_obj(3);
    white += !test_is_marked(o);
    late.push_back(hide(o));
  }
  CHECK(white == 0);
  const uintptr_t unused = r.next;  // a slot of the last run that no object got
  CHECK(test_is_marked(reinterpret_cast<void*>(unused)));
  test_set_hold(false);
  test_wait_cycle_done();
  CHECK(r.next == 0);  // the runs were given back at mark termination...
  CHECK(gc_base(reinterpret_cast<void*>(unused)) == nullptr);  // ...and their slots freed
  CHECK(gc_base(reinterpret_cast<void*>(left_to - sizeof(Obj))) != nullptr);  // handed out
  REQUIRE(verify_heap(false) == 0);
  REQUIRE(verify_failures() == 0);
}

// The barrier's filter (WbBuf::needs): an object of the allocation run the thread took
// during the mark is black, so storing it queues nothing; an object from before the mark
// is queued as before, and so is one of an earlier run of the mark (only the last counts).
TEST_CASE("a store of an object from the thread's black run queues nothing", "[gc][barrier]") {
  ensure_heap();
  gc_collect();
  Obj* holder = new_obj(1);
  Obj* white = new_obj(2);
  const SpanClass sc = make_span_class(size_to_class(sizeof(Obj)), false);
  const mcache& cache = current_thread()->cache;
  const mcache::Run& r = cache.run[sc];
  test_set_hold(true);
  test_start_cycle();
  const WbBuf& b = current_thread()->wbuf;
  auto queued = [&](const void* p) {
    for (int i = 0; i < b.n; i++)
      if (b.buf[i] == reinterpret_cast<uintptr_t>(p)) return true;
    return false;
  };
  while (r.next != cache.end_of_run(sc)) new_obj(3);  // use up the run from before the mark
  Obj* first = new_obj(4);              // from a run taken during the mark
  CHECK(test_is_marked(first));
  int n0 = b.n;
  gc_write_ptr(&holder->a, first);
  CHECK(b.n == n0);  // black: not queued
  CHECK(!queued(first));
  gc_write_ptr(&holder->b, white);
  CHECK(b.n == n0 + 1);  // allocated before the mark: queued
  CHECK(queued(white));
  gc_write_ptr(&holder->a, nullptr);  // the old value, first, is black too
  CHECK(b.n == n0 + 1);
  while (r.next != cache.end_of_run(sc)) new_obj(5);
  Obj* second = new_obj(6);  // the next run: `first` is no longer in the filter's run
  gc_write_ptr(&holder->a, first);
  CHECK(queued(first));
  CHECK(test_is_marked(second));
  holder = white = first = second = nullptr;
  test_set_hold(false);
  test_wait_cycle_done();
  CHECK(current_thread()->cache.black_lo == 0);  // cleared at mark termination
  CHECK(current_thread()->cache.black_hi == 0);
  REQUIRE(verify_heap(false) == 0);
}

TEST_CASE("a store inside a blocking region of the thread's own shades directly, not through "
          "its buffer", "[gc][barrier]") {
  ensure_heap();
  gc_collect();
  Obj* holder = new_obj(1);
  Obj* old_v = new_obj(2);
  Obj* new_v = new_obj(3);
  holder->a = old_v;  // before the mark: no barrier
  test_set_hold(true);
  test_start_cycle();
  const WbBuf& b = current_thread()->wbuf;
  int n0 = b.n;
  CHECK(!test_is_marked(old_v));
  CHECK(!test_is_marked(new_v));
  // The collector counts the thread as stopped inside the region and may flush its buffer
  // at the same time: the values go to the mark queue directly.
  gc_blocking_begin();
  gc_write_ptr(&holder->a, new_v);
  gc_blocking_end();
  CHECK(holder->a == new_v);
  CHECK(b.n == n0);
  CHECK(test_is_marked(old_v));
  CHECK(test_is_marked(new_v));
  holder = old_v = new_v = nullptr;
  test_set_hold(false);
  test_wait_cycle_done();
  REQUIRE(verify_heap(false) == 0);
}

// Go's gcMarkDone ragged barrier: a running thread flushes its write-barrier buffer at a
// safepoint before the world stops, so the mark termination pause greys nothing of it.
TEST_CASE("running threads flush their barrier buffers before mark termination stops the world",
          "[gc][barrier]") {
  ensure_heap();
  // Stress builds: the thread below must be running when mark termination comes, not
  // inside a stress collection of its own (its safepoint loop falls due every 100 polls).
  StressCollectionsHeld no_stress;
  gc_collect();
  // Objects from before the mark: the barrier queues them (new ones are black, and the
  // barrier does not queue those of the thread's current run).
  auto** pre = static_cast<Obj**>(gc_alloc(100 * sizeof(Obj*), nullptr));
  for (int i = 0; i < 100; i++) pre[i] = new_obj(uint64_t(i));
  // The collector waits 500 us for each running thread to flush (kRaggedFlushWaitNs): on a
  // loaded machine (sanitizer builds, tests in parallel) the thread may not get a CPU that
  // soon, and its buffer is then flushed in the pause. So up to three tries, one of which
  // must find the pause with nothing to grey; a ragged flush that never happens fails all.
  int pause_entries = -1;
  for (int attempt = 0; attempt < 3 && pause_entries != 0; attempt++) {
    test_set_hold(true);
    test_start_cycle();
    std::atomic<int> buffered{-1};
    std::atomic<bool> stop{false};
    std::thread th([&] {
      gc_thread_attach();
      Obj* o = new_obj(1);
      for (int i = 0; i < 100; i++) gc_write_ptr(&o->a, pre[i]);
      buffered = current_thread()->wbuf.n;
      while (!stop.load()) gc_safepoint();  // running, reaching safepoints
      gc_thread_detach();
    });
    while (buffered.load() < 0) std::this_thread::yield();
    CHECK(buffered.load() >= 199);  // the new values and the old ones (null the first time)
    test_set_hold(false);
    test_wait_cycle_done();
    pause_entries = test_pause_wbuf_entries();
    stop = true;
    gc_blocking_begin();
    th.join();
    gc_blocking_end();
  }
  CHECK(pause_entries == 0);
  REQUIRE(verify_failures() == 0);
}

TEST_CASE("a white object stored into a black one survives (insertion half)", "[gc][barrier]") {
  ensure_heap();
  gc_add_root(g_roots, sizeof g_roots);
  Obj* black = new_obj(1);
  g_roots[0] = black;
  uintptr_t white_h = 0;
  Stepper t([&](Stepper& s) {
    Obj* w = new_obj(2);  // only this thread's (unscanned) stack refers to it
    white_h = hide(w);
    s.done(1);
    s.wait_for(2);
    gc_write_ptr(&g_roots[0]->a, w);  // into a black object
    w = nullptr;                       // the stack lets go
    s.done(2);
  });
  t.go(1);
  test_set_hold(true);
  test_start_cycle();
  test_drain_all();  // the rooted object is black now
  REQUIRE(test_is_marked(black));
  REQUIRE(!marked_h(white_h));  // white: the critical moment
  t.go(2);  // the thread stores and exits; its stack was never scanned
  test_set_hold(false);
  test_wait_cycle_done();
  REQUIRE(!freed(white_h));
  REQUIRE(hide(g_roots[0]->a) == white_h);
  REQUIRE(check_of_h(white_h) == ~uint64_t(2));
  g_roots[0] = nullptr;
  gc_remove_root(g_roots);
  REQUIRE(verify_failures() == 0);
}

TEST_CASE("a pointer moved from the heap onto a scanned stack survives its deletion from the heap "
          "(deletion half)", "[gc][barrier]") {
  ensure_heap();
  gc_add_root(g_roots, sizeof g_roots);
  uintptr_t w_h = 0;
  on_fresh_thread([&] {
    Obj* holder = new_obj(1);
    Obj* w = new_obj(2);
    gc_write_ptr(&holder->a, w);
    g_roots[1] = holder;
    w_h = hide(w);
  });
  std::atomic<bool> intact{false};
  Stepper t([&](Stepper& s) {
    s.done(1);
    s.wait_for(2);  // by now this thread's stack has been scanned (black)
    Obj* w = g_roots[1]->a;            // onto the black stack
    gc_write_ptr(&g_roots[1]->a, nullptr);  // deleted from the heap
    s.done(2);
    s.wait_for(3);  // the cycle completes meanwhile
    intact = gc_base(w) == w && w->check == ~uint64_t(2);
    s.done(3);
  });
  t.go(1);
  test_set_hold(true);
  test_start_cycle();
  test_scan_parked_stacks();  // the thread waits in a blocking region: its stack is scanned
  REQUIRE(!marked_h(w_h));  // still white: the holder is not scanned yet
  t.go(2);
  test_set_hold(false);
  test_wait_cycle_done();
  t.go(3);
  REQUIRE(intact);
  g_roots[1] = nullptr;
  gc_remove_root(g_roots);
  REQUIRE(verify_failures() == 0);
}

TEST_CASE("a subgraph detached from a grey object and re-attached under a black one survives",
          "[gc][barrier]") {
  ensure_heap();
  gc_add_root(g_roots, sizeof g_roots);
  Obj* black = new_obj(1);
  g_roots[2] = black;
  uintptr_t grey_h = 0, s1_h = 0, s2_h = 0;
  Stepper t([&](Stepper& s) {
    Obj* grey = new_obj(10);
    Obj* s1 = new_obj(11);
    Obj* s2 = new_obj(12);
    gc_write_ptr(&grey->a, s1);
    gc_write_ptr(&s1->a, s2);
    grey_h = hide(grey);
    s1_h = hide(s1);
    s2_h = hide(s2);
    grey = s1 = s2 = nullptr;
    s.done(1);
    s.wait_for(2);
    Obj* g = static_cast<Obj*>(unhide(grey_h));
    gc_write_ptr(&g_roots[2]->a, g->a);  // re-attach under the black object
    gc_write_ptr(&g->a, nullptr);        // detach from the grey one
    s.done(2);
  });
  t.go(1);
  test_set_hold(true);
  test_start_cycle();
  test_drain_all();                // black
  shade_h(grey_h);                 // grey: marked, queued, not scanned
  REQUIRE(test_is_marked(black));
  REQUIRE(marked_h(grey_h));
  REQUIRE(!marked_h(s1_h));
  t.go(2);
  test_set_hold(false);
  test_wait_cycle_done();
  REQUIRE(!freed(s1_h));
  REQUIRE(!freed(s2_h));
  REQUIRE(g_roots[2]->a->a->check == ~uint64_t(12));
  g_roots[2] = nullptr;
  gc_remove_root(g_roots);
  REQUIRE(verify_failures() == 0);
}

namespace {
void* g_plain_root;  // a registered root written with plain stores

// Allocates X in a deep frame, then (step 2) moves it into the root with a plain store and
// drops it: afterwards only stale words far below the thread's later stack pointer hold it.
[[gnu::noinline]] void put_in_root(Stepper& s, uintptr_t* x_h) {
  Obj* volatile x = new_obj(7);
  *x_h = hide(x);
  s.done(1);
  s.wait_for(2);  // the cycle starts meanwhile; the roots were scanned (empty)
  g_plain_root = x;
  x = nullptr;
}
[[gnu::noinline]] void put_in_root_deep(Stepper& s, uintptr_t* x_h) {
  volatile char pad[32768];  // put_in_root's frame lies below this
  pad[0] = 1;
  pad[sizeof pad - 1] = 1;
  put_in_root(s, x_h);
  asm volatile("" ::: "memory");
}
}  // namespace

TEST_CASE("a pointer one thread moves through a plain root across its own stack scan survives",
          "[gc][barrier][roots]") {
  ensure_heap();
  gc_add_root(&g_plain_root, sizeof g_plain_root);
  uintptr_t x_h = 0;
  std::atomic<bool> intact{false};
  Stepper t([&](Stepper& s) {
    put_in_root_deep(s, &x_h);
    s.done_and_wait(2, 3);  // parked: the stack is scanned now (X is only in the root)
    Obj* volatile p = static_cast<Obj*>(g_plain_root);  // back onto the black stack
    g_plain_root = nullptr;                             // plain store: no barrier
    s.done(3);
    s.wait_for(4);  // the cycle completes meanwhile
    intact = gc_base(p) == p && p->check == ~uint64_t(7);
    s.done(4);
  });
  t.go(1);
  test_set_hold(true);
  test_start_cycle();
  t.go(2);
  REQUIRE(!marked_h(x_h));
  test_scan_parked_stacks();  // the thread's stack, and the roots with it (INV-STACK-3)
  bool marked_by_scan = marked_h(x_h);
  t.go(3);
  test_set_hold(false);
  test_wait_cycle_done();
  t.go(4);
  REQUIRE(marked_by_scan);
  REQUIRE(intact);
  gc_remove_root(&g_plain_root);
  REQUIRE(verify_failures() == 0);
}

TEST_CASE("a pointer handed between two threads through a root written with gc_write_ptr "
          "survives", "[gc][barrier][roots]") {
  ensure_heap();
  gc_add_root(&g_plain_root, sizeof g_plain_root);
  uintptr_t x_h = 0;
  std::atomic<bool> intact{false};
  // The taker's stack is scanned first (black); the giver then stores X into the root and
  // drops it; the taker takes X and clears the root — all between two root scans.
  Stepper taker([&](Stepper& s) {
    s.done(1);
    s.wait_for(2);
    Obj* volatile p = static_cast<Obj*>(g_plain_root);
    gc_write_ptr(&g_plain_root, nullptr);
    s.done(2);
    s.wait_for(3);
    intact = gc_base(p) == p && p->check == ~uint64_t(7);
    s.done(3);
  });
  taker.go(1);
  Stepper giver([&](Stepper& s) {
    Obj* volatile x = new_obj(7);
    x_h = hide(x);
    s.done(1);
    s.wait_for(2);
    gc_write_ptr(&g_plain_root, x);  // the barrier shades X (the insertion half)
    x = nullptr;
    s.done(2);
    s.wait_for(3);
    s.done(3);
  });
  giver.go(1);
  test_set_hold(true);
  test_start_cycle();
  test_scan_parked_stacks();  // both threads wait parked: both stacks black now
  giver.go(2);
  taker.go(2);
  test_set_hold(false);
  test_wait_cycle_done();
  taker.go(3);
  giver.go(3);
  REQUIRE(intact);
  gc_remove_root(&g_plain_root);
  REQUIRE(verify_failures() == 0);
}
