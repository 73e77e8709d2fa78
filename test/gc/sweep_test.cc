// Sweeping (lib/gc/sweep.cc): empty spans go back to the mheap, their free pages coalesce,
// and allocation sweeps the spans it needs itself when the background sweeper lags.
#include <catch2/catch.hpp>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

#include "alloc/mheap.h"
#include "gc/collector.h"
#include "gc/sweep.h"
#include "gc/testing.h"
#include "gc/thread.h"
#include "support/heap.h"
#include "support/scrub.h"
#include "tricolor/gc.h"
#include "tricolor_config.h"

using namespace tricolor::internal;
using namespace tricolor::test;

namespace {

// The size class of objects of `size` bytes, and its spans in use.
struct ClassSpans {
  int index = -1;
  uint64_t spans = 0;
};
ClassSpans class_spans(size_t size) {
  gc_class_stats cs[128];
  int n = std::min(gc_read_class_stats(cs, 128), 128);
  ClassSpans r;
  for (int i = 1; i < n; i++)
    if (cs[i].object_size >= size) {
      r.index = i;
      r.spans = cs[i].spans;
      break;
    }
  return r;
}

gc_stats stats() {
  gc_stats s;
  gc_read_stats(&s);
  return s;
}

// A root slot for the array that holds a population while it is built.
void* g_hold[1];

}  // namespace

TEST_CASE("spans left empty by a sweep go back to the mheap", "[gc][sweep]") {
  ensure_heap();
  constexpr size_t kSize = 1024;
  gc_collect();
  ClassSpans c0 = class_spans(kSize);
  REQUIRE(c0.index > 0);
  std::vector<uintptr_t> pop = rooted_population(g_hold, scaled(20000), kSize);
  ClassSpans c1 = class_spans(kSize);
  gc_stats s1 = stats();
  drop_population(g_hold, int(pop.size()));
  size_t kept = require_freed_or_stack_held(pop, 3).kept;
  ClassSpans c2 = class_spans(kSize);
  gc_stats s2 = stats();
  INFO("class " << c0.index << " spans: " << c0.spans << " -> " << c1.spans << " -> "
                << c2.spans << "; heap_inuse " << (s1.heap_inuse >> 10) << " KiB -> "
                << (s2.heap_inuse >> 10) << " KiB; kept " << kept);
  uint64_t bytes = uint64_t(pop.size()) * kSize;
  REQUIRE(c1.spans >= c0.spans + bytes / (64 << 10));  // the population filled many spans
  // Each object a stale stack word keeps holds one span; every other span was freed.
  REQUIRE(c2.spans <= c0.spans + kept);
  REQUIRE(s2.heap_inuse + bytes / 2 <= s1.heap_inuse);
}

// Waits (in a blocking region: the collector does not wait for this thread) until done()
// holds, at most a minute; returns done().
template <class F>
bool wait_blocking(F done) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  gc_blocking_begin();
  while (!done() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  gc_blocking_end();
  return done();
}

// Runs a cycle as the heap trigger starts one (nobody waits for it: the background sweeper
// sweeps it) and waits until it is swept. False if it was not within a minute.
bool background_cycle_swept() {
  uint64_t swept0 = test_cycles_swept();
  test_request_background_cycle();
  return wait_blocking([&] { return test_cycles_swept() > swept0; });
}

TEST_CASE("a cycle the heap starts keeps the spans it empties for one cycle and the next frees "
          "them if unused", "[gc][sweep]") {
  ensure_heap();
  constexpr size_t kSize = 1024;
  // Only the cycles the test starts run: one the pacer started while the class allocates
  // would sweep the kept spans it has no use for yet, and free them (as it should). So do a
  // stress build's collections (gc_collect keeps no emptied span, and frees those a sweep
  // kept): those of the allocation loop below left 1 of the 313 kept spans.
  int pct = gc_set_percent(-1);
  StressCollectionsHeld no_stress;
  gc_collect();
  ClassSpans c0 = class_spans(kSize);
  int n = scaled(20000);
  std::vector<uintptr_t> pop = rooted_population(g_hold, n, kSize);
  ClassSpans c1 = class_spans(kSize);
  drop_population(g_hold, n);
  REQUIRE(c1.spans >= c0.spans + uint64_t(n) * kSize / (64 << 10));
  // Every object of the population's spans died: the sweep keeps the spans in the class.
  REQUIRE(background_cycle_swept());
  ClassSpans c2 = class_spans(kSize);
  // The class allocates as much again: from the kept spans, no new ones.
  uint64_t sys2 = stats().heap_sys;
  on_fresh_thread([&] {
    for (int i = 0; i < n; i++) gc_alloc_noscan(kSize);
  });
  ClassSpans c3 = class_spans(kSize);
  uint64_t sys3 = stats().heap_sys;
  // That garbage dies: kept again (its spans were used). Then a cycle in which the class
  // allocates nothing: its sweep frees them.
  REQUIRE(background_cycle_swept());
  ClassSpans c4 = class_spans(kSize);
  REQUIRE(background_cycle_swept());
  ClassSpans c5 = class_spans(kSize);
  gc_set_percent(pct);
  INFO("class " << c0.index << " spans: " << c0.spans << " before, " << c1.spans
                << " with the population, " << c2.spans << " after its sweep, " << c3.spans
                << " after as much garbage, " << c4.spans << " after its sweep, " << c5.spans
                << " after a cycle unused");
  CHECK(c2.spans == c1.spans);
  CHECK(c3.spans == c2.spans);
  CHECK(sys3 == sys2);
  CHECK(c4.spans == c3.spans);
  // All but a tenth of the population's spans are freed (a stale stack word may keep an
  // object, and its span with it).
  CHECK(c5.spans <= c0.spans + (c1.spans - c0.spans) / 10);
}

TEST_CASE("the pages of freed large objects coalesce into one free run", "[gc][sweep]") {
  ensure_heap();
  constexpr size_t kPages = 40;
  constexpr size_t kSize = kPages * kPageSize;
  constexpr int kCount = 16;
  gc_collect();
  std::vector<uintptr_t> pop = rooted_population(g_hold, kCount, kSize);
  std::vector<uintptr_t> addrs;
  for (uintptr_t h : pop) addrs.push_back(reinterpret_cast<uintptr_t>(unhide(h)));
  std::sort(addrs.begin(), addrs.end());
  scrub_stack_below();  // the sort's spilled addresses
  drop_population(g_hold, int(pop.size()));
  size_t kept = require_freed_or_stack_held(pop, 3).kept;
  // Best fit carves consecutive requests from one run, so most of them lie back to back
  // (counted over all of them: whether a stale stack word keeps one is not the allocator's
  // doing).
  size_t back_to_back = 0;
  for (size_t i = 0; i + 1 < addrs.size(); i++) back_to_back += addrs[i + 1] == addrs[i] + kSize;
  INFO("back-to-back pairs " << back_to_back << ", kept " << kept);
  REQUIRE(back_to_back >= kCount / 2);
  // Each maximal group of back-to-back freed objects (one a stale word keeps splits its
  // group) must now lie in a single free run.
  size_t longest_group = 0;
  for (size_t i = 0; i < addrs.size();) {
    if (heap().free_run_pages_at(addrs[i]) == 0) {  // kept
      i++;
      continue;
    }
    size_t j = i;
    while (j + 1 < addrs.size() && addrs[j + 1] == addrs[j] + kSize &&
           heap().free_run_pages_at(addrs[j + 1]) != 0)
      j++;
    size_t group = j - i + 1;
    size_t run = heap().free_run_pages_at(addrs[i]);
    INFO("group of " << group << " at " << addrs[i] << ": run of " << run << " pages");
    // The run holding the group's first page covers the whole group.
    CHECK(run >= group * kPages);
    CHECK(heap().free_run_pages_at(addrs[j] + kSize - 1) == run);
    longest_group = std::max(longest_group, group);
    i = j + 1;
  }
  // Seen under TSan: two of the 16 kept by words of the parked main thread's stack, which
  // left no group of 8. The groups between kept ones still hold the rest. A page cache
  // (mheap.h) that takes its 64 pages from the same free run between two of the
  // allocations splits the sequence once more.
  REQUIRE(longest_group >= (kCount - kept) / (kept + 2));
  // One object of the group's total size fits in the freed space: the heap does not grow.
  uint64_t sys0 = stats().heap_sys;
  void* big = nullptr;
  on_fresh_thread([&] { big = gc_alloc_noscan(longest_group * kSize); });
  REQUIRE(big != nullptr);
  CHECK(stats().heap_sys == sys0);
}

// The background sweeper uses only the CPU time mutators leave (as Go's bgsweep yields to
// busy goroutines): it runs at nice 19, and the program's threads keep their own priority.
TEST_CASE("the background sweeper runs at the lowest priority, the program's threads at theirs",
          "[gc][sweep]") {
  ensure_heap();
  int mine = getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)));
  long tid = 0;
  for (int i = 0; i < 2000 && (tid = test_background_sweeper_tid()) == 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(tid != 0);
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  REQUIRE(errno == 0);
  CHECK(nice == 19);
  CHECK(getpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid))) == mine);
  CHECK(mine < 19);
}

TEST_CASE("with the background sweeper held, allocation sweeps the spans it needs",
          "[gc][sweep][lazy]") {
  ensure_heap();
  constexpr size_t kSize = 48;
  gc_collect();
  // No trigger, from before the garbage is made: a thread whose allocation crossed it would
  // sweep every span left before it started the next cycle (start_cycle_from_allocation),
  // and allocation would sweep none. (Set after the garbage, a cycle the garbage had
  // started could still be marking: its end satisfied the wait below, and the requested
  // cycle after it swept everything at its start: 1 run in 10 with two test processes.)
  int pct = gc_set_percent(-1);
  // Garbage of one class, spread over many spans.
  on_fresh_thread([&] {
    for (int i = 0; i < scaled(100000); i++) gc_alloc_noscan(kSize);
  });
  uint64_t marked0 = cycles_marked();
  test_hold_background_sweeper(true);
  // A cycle nobody waits for: the held background sweeper is its only sweeper.
  test_request_background_cycle();
  // The cycle is marked; its spans are left unswept.
  bool marked = wait_blocking([&] { return cycles_marked() > marked0; });
  uint64_t by_alloc0 = sweep_stats().spans_swept_by_alloc.load();
  bool swept_early = sweep_done();
  on_fresh_thread([&] {
    for (int i = 0; i < 1000; i++) gc_alloc_noscan(kSize);
  });
  uint64_t by_alloc1 = sweep_stats().spans_swept_by_alloc.load();
  gc_set_percent(pct);
  test_hold_background_sweeper(false);
  gc_collect();  // sweeps whatever is left
  REQUIRE(marked);
  CHECK_FALSE(swept_early);  // the sweep was held
  CHECK(by_alloc1 > by_alloc0);
}

// The sweep clears the objects that died in a span that stays in use (and an emptied span
// kept for its class), so that the allocation runs taken from it skip their memset. Every
// object handed out must still read zero: two threads allocate garbage of three classes
// filled with a pattern, with a low GOGC so that heap-triggered cycles (which keep emptied
// spans) and their background sweeps run all along, and a share of the objects lives on
// for a while so that spans are swept partly full.
TEST_CASE("objects read zero when the sweep has cleared the dead ones of their span",
          "[gc][sweep][zero]") {
  ensure_heap();
  int old = gc_set_percent(20);
  std::atomic<uint64_t> bad{0}, objects{0};
  auto work = [&](int seed) {
    gc_thread_attach();
    static const size_t kSizes[] = {32, 48, 256};
    std::vector<unsigned char*> keep(512, nullptr);
    uint64_t rng = 0x9e3779b97f4a7c15ull * uint64_t(seed + 1);
    for (int i = 0; i < scaled(400000); i++) {
      rng = rng * 6364136223846793005u + 1442695040888963407u;
      size_t size = kSizes[(rng >> 33) % 3];
      auto* p = static_cast<unsigned char*>((rng >> 40) % 2 ? gc_alloc(size, nullptr)
                                                             : gc_alloc_noscan(size));
      if (!std::all_of(p, p + size, [](unsigned char c) { return c == 0; })) bad++;
      // A pattern with no heap pointer in it (conservative scanning must not keep a thing).
      memset(p, 0xa5, size);
      keep[(rng >> 20) % keep.size()] = p;  // about one in 512 lives on for a while
      objects++;
    }
    gc_thread_detach();
  };
  std::thread a(work, 1), b(work, 2);
  gc_blocking_begin();
  a.join();
  b.join();
  gc_blocking_end();
  gc_set_percent(old);
  INFO(objects.load() << " objects");
  REQUIRE(bad.load() == 0);
  REQUIRE(verify_failures() == 0);
}

// A span whose objects all died goes back to the heap (or to the sweeping thread's page
// cache) with its pages cleared whole, and the span that takes them next, of any class,
// skips its memset. Each round fills a few MiB with objects of one class, a pattern in
// every byte, drops them and collects (a user cycle frees emptied spans at once); the next
// round's class has another geometry, so its objects and its spans' tails lie across the
// previous round's objects. Every object must read zero when handed out.
TEST_CASE("objects read zero in pages that freed spans of another class held",
          "[gc][sweep][zero]") {
  ensure_heap();
  // Small classes, then large objects (their own spans: cleared by the sweep up to
  // kClearInPlaceBytes, by the allocation above that).
  static const size_t kSizes[] = {48, 256, 112, 1024, 80, 3072, 640, 24, 40 << 10, 100 << 10, 400 << 10};
  constexpr int kNumSizes = sizeof kSizes / sizeof kSizes[0];
  uint64_t bad = 0, objects = 0;
  std::vector<unsigned char*> objs;
  for (int round = 0; round < 2 * kNumSizes; round++) {
    size_t size = kSizes[round % kNumSizes];
    size_t n = (size_t(4) << 20) / size;
    objs.assign(n, nullptr);
    for (size_t i = 0; i < n; i++) {
      auto* p = static_cast<unsigned char*>(i % 2 ? gc_alloc(size, nullptr) : gc_alloc_noscan(size));
      REQUIRE(p);
      if (!std::all_of(p, p + size, [](unsigned char c) { return c == 0; })) bad++;
      memset(p, 0xa5, size);  // no heap pointer in it: conservative scans keep nothing
      objs[i] = p;
      objects++;
    }
    // The vector's buffer is not scanned: every object dies here.
    std::fill(objs.begin(), objs.end(), nullptr);
    gc_collect();
  }
  INFO(objects << " objects");
  REQUIRE(bad == 0);
  REQUIRE(verify_failures() == 0);
}

// A large object that dies is cleared by the sweep that frees its span when the clear is
// short (up to kClearInPlaceBytes), as a small span that dies whole: its pages go back clean
// (to the sweeping thread's page cache or to the heap's free runs) and the next span on them
// needs no memset. A larger one goes back dirty, and its next owner clears it inside a
// collector wait (zero_large).
TEST_CASE("the sweep clears a dead large object's pages up to kClearInPlaceBytes",
          "[gc][sweep][zero][large]") {
  ensure_heap();
  gc_collect();
  ThreadState* t = current_thread();
  REQUIRE(t);
  PageCache& pc = t->cache.pages;
  heap().flush_page_cache(&pc);
  // No collection but the test's: the objects are held by nothing the collector scans, and
  // an earlier one would free them while the loop runs and hand their pages to the next.
  int old = gc_set_percent(-1);
  StressCollectionsHeld no_stress;
  static const size_t kSizes[] = {40 << 10, 100 << 10, kClearInPlaceBytes, 400 << 10, 2 << 20};
  constexpr uintptr_t kHide = 0x5a5a5a5a5a5a5a5aull;  // no stack word points at an object
  std::vector<std::pair<uintptr_t, size_t>> hidden;   // (first page ^ kHide, bytes)
  {
    std::vector<unsigned char*> objs;
    for (int copy = 0; copy < 3; copy++)
      for (size_t size : kSizes) {
        auto* p = static_cast<unsigned char*>(gc_alloc_noscan(size));
        REQUIRE(p);
        memset(p, 0xa5, size);
        objs.push_back(p);
        hidden.push_back({reinterpret_cast<uintptr_t>(p) ^ kHide, size});
      }
    std::fill(objs.begin(), objs.end(), nullptr);
  }
  scrub_stack_below();
  gc_collect();  // this thread sweeps: spans in its page-cache window go back to it
  gc_set_percent(old);
  size_t checked = 0, clean = 0, dirty = 0;
  for (auto [h, size] : hidden) {
    uintptr_t page = h ^ kHide;
    bool in_window = pc.base && page >= pc.base && page < pc.base + PageCache::kPages * kPageSize;
    bool is_dirty;
    if (heap().free_run_pages_at(page) != 0) {
      is_dirty = heap().free_page_dirty(page);
    } else if (in_window && (pc.free >> ((page - pc.base) / kPageSize) & 1)) {
      is_dirty = pc.dirty >> ((page - pc.base) / kPageSize) & 1;
    } else {
      continue;  // still in use (a stale word kept it) or already taken again
    }
    checked++;
    // Stress builds poison freed pages instead of clearing them.
    bool expect_dirty = TRICOLOR_STRESS || size > kClearInPlaceBytes;
    INFO(size << " B at page " << std::hex << page);
    CHECK(is_dirty == expect_dirty);
    (is_dirty ? dirty : clean)++;
  }
  INFO(checked << " of " << hidden.size() << " freed objects checked");
  // A stale word on the stack may keep an object.
  REQUIRE(checked + 1 >= hidden.size());
  if (!TRICOLOR_STRESS) REQUIRE(clean >= 8);  // 9 at most: three sizes up to the bound
}

// gc_collect from an attached thread: the caller sweeps the heap itself once the mark is
// over, and the spans it empties inside its page-cache window go back to that cache (not to
// the heap's free runs), so that its next spans reuse the pages its CPU just cleared.
TEST_CASE("gc_collect's caller sweeps, and its emptied spans go back to its page cache",
          "[gc][sweep][pagecache]") {
  ensure_heap();
  gc_collect();
  ThreadState* t = current_thread();
  REQUIRE(t);
  PageCache& pc = t->cache.pages;
  heap().flush_page_cache(&pc);  // the next span takes a fresh 64-page window
  constexpr size_t kSize = 1024;  // 8 objects in a one-page span
  constexpr int kSpans = 8;
  std::vector<uintptr_t> pages;  // hidden: the spans' first pages
  {
    std::vector<void*> objs;
    for (int i = 0; i < 8 * kSpans; i++) {
      void* p = gc_alloc_noscan(kSize);
      REQUIRE(p);
      objs.push_back(p);
      uintptr_t page = reinterpret_cast<uintptr_t>(p) & ~(kPageSize - 1);
      if (std::find(pages.begin(), pages.end(), page) == pages.end()) pages.push_back(page);
    }
    REQUIRE(pc.base != 0);
    std::fill(objs.begin(), objs.end(), nullptr);
  }
  scrub_stack_below();
  gc_collect();
  size_t in_cache = 0, in_window = 0;
  for (uintptr_t page : pages) {
    if (page < pc.base || page >= pc.base + PageCache::kPages * kPageSize) continue;
    in_window++;
    if (pc.free >> ((page - pc.base) / kPageSize) & 1) {
      in_cache++;
      CHECK(heap().free_run_pages_at(page) == 0);  // not in the heap's free runs as well
      if (!TRICOLOR_STRESS)  // stress builds poison freed pages instead
        CHECK((pc.dirty >> ((page - pc.base) / kPageSize) & 1) == 0);  // cleared by the sweep
    }
  }
  INFO(pages.size() << " spans, " << in_window << " in the window, " << in_cache << " back in the cache");
  REQUIRE(in_window == pages.size());
  // A stale word on the stack may keep an object, and its span with it.
  CHECK(in_cache + 1 >= pages.size());
}

// A thread that refills a span class may grow the heap inside a collector wait (mheap.cc,
// alloc_pages_or_grow), where a whole cycle can run: its mark termination advances the
// sweep generation. The span the thread then takes must be stamped with the generation of
// after the wait, not of before: stamped "cached before this sweep began", it was swept
// when the thread filled it and let it go, with the empty mark bits of the cycle that ran
// during the wait, and every object the thread had allocated in it was freed while still
// reachable (and cleared by the sweep).
TEST_CASE("a span taken across a collection that ran while the heap grew keeps its objects",
          "[gc][sweep][grow]") {
  ensure_heap();
  gc_collect();
  int old = gc_set_percent(-1);  // only the collection the test runs
  // Stress builds too: their collections free the grower's garbage, so that the heap it
  // fills may never grow (after other test cases left free pages).
  StressCollectionsHeld no_stress;
  static std::atomic<int> state{0};  // 1: the grower waits in the hook; 2: let it go
  state = 0;
  test_set_grow_hook([] {
    int expected = 0;
    if (!state.compare_exchange_strong(expected, 1)) return;
    while (state.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  constexpr int kKept = 600;  // several spans of 64 B objects (128 each)
  static void* kept[kKept];
  gc_add_root(kept, sizeof kept);
  std::thread grower([&] {
    gc_thread_attach();
    // Garbage until the heap has no free page left and grows (automatic collection is off).
    while (state.load() == 0) gc_alloc(64, nullptr);
    for (int i = 0; i < kKept; i++) {
      auto* p = static_cast<uint64_t*>(gc_alloc(64, nullptr));
      for (int w = 0; w < 8; w++) p[w] = 0x1234567800000000ull | uint64_t(i) << 8 | w;
      gc_write_ptr(&kept[i], p);
    }
    gc_thread_detach();
  });
  // In a blocking region: a stop of the world meanwhile must not wait for this thread (a
  // spin here without one hung a stress build: the grower's stress collection waited for it).
  CHECK(wait_blocking([] { return state.load() == 1; }));
  gc_collect();  // a whole cycle while the grower waits in its collector wait
  state = 2;
  gc_blocking_begin();
  grower.join();
  gc_blocking_end();
  test_set_grow_hook(nullptr);
  int broken = 0;
  for (int i = 0; i < kKept; i++) {
    auto* p = static_cast<uint64_t*>(kept[i]);
    bool ok = gc_base(p) == p;
    for (int w = 0; w < 8 && ok; w++) ok = p[w] == (0x1234567800000000ull | uint64_t(i) << 8 | w);
    broken += !ok;
  }
  gc_remove_root(kept);
  gc_set_percent(old);
  CHECK(broken == 0);
  REQUIRE(verify_failures() == 0);
}

// The same wait for the tiny allocator: its cursor is inside the last block of its run when
// a 12 B object does not fit there, and a collection that runs while the refill grows the
// heap gives back the runs of every thread. It must find the tiny run used up (a run left
// inside its block failed the check that a run ends at its span's freeindex, once in the
// torture suite: its span was no longer cached). This scenario has not reproduced that
// failure without the fix (malloc.cc, alloc_tiny_run); it checks that the collection and
// the refill get through each other.
TEST_CASE("a collection while the tiny allocator's refill grows the heap", "[gc][sweep][grow]") {
  ensure_heap();
  gc_collect();
  int old = gc_set_percent(-1);
  StressCollectionsHeld no_stress;  // as above
  static std::atomic<int> state{0};
  state = 0;
  test_set_grow_hook([] {
    int expected = 0;
    if (!state.compare_exchange_strong(expected, 1)) return;
    while (state.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  std::thread grower([&] {
    gc_thread_attach();
    while (state.load() == 0) gc_alloc_noscan(12);  // a block each, the cursor at offset 12
    for (int i = 0; i < 1000; i++) memset(gc_alloc_noscan(12), 0x5a, 12);
    gc_thread_detach();
  });
  CHECK(wait_blocking([] { return state.load() == 1; }));
  gc_collect();
  state = 2;
  gc_blocking_begin();
  grower.join();
  gc_blocking_end();
  test_set_grow_hook(nullptr);
  gc_set_percent(old);
  REQUIRE(verify_failures() == 0);
}
