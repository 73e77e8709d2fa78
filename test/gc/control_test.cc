// Pacing, forced cycles, the scavenger, the memory limit and out-of-memory, environment
// overrides, statistics, and threads mutating while cycles run.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "alloc/mheap.h"
#include "api/capture.h"
#include "gc/collector.h"
#include "gc/testing.h"
#include "os/clock.h"
#include "os/page_source.h"
#include "support/heap.h"
#include "tricolor/gc.h"

using namespace tricolor::internal;
using namespace tricolor::test;

namespace {

struct Cell {
  Cell* next;
  uint64_t value;
  uint64_t check;
};
const gc_type* cell_type() {
  static const gc_type* t = [] {
    size_t offs[] = {offsetof(Cell, next)};
    return gc_type_new("Cell", sizeof(Cell), offs, 1);
  }();
  return t;
}

uint32_t num_gc() {
  gc_stats s;
  gc_read_stats(&s);
  return s.num_gc;
}

// Allocates `bytes` of garbage in 64-byte objects while `live` stays reachable.
void churn(size_t bytes) {
  for (size_t n = 0; n < bytes; n += 64) gc_alloc(64, nullptr);
}

std::atomic<int> g_oom_calls{0};
void count_oom(size_t) { g_oom_calls++; }

// n objects of 1 MiB, written (resident), held from hold[0] through an array; their hidden
// addresses go to *hidden if given.
void hold_resident_mib(void** hold, int n, std::vector<uintptr_t>* hidden) {
  auto** arr = static_cast<void**>(gc_alloc(size_t(n) * sizeof(void*), nullptr));
  hold[0] = arr;
  for (int i = 0; i < n; i++) {
    auto* p = static_cast<char*>(gc_alloc_noscan(1 << 20));
    memset(p, 1, 1 << 20);  // resident
    gc_write_ptr(&arr[i], p);
    if (hidden) hidden->push_back(hide(p));
  }
}

}  // namespace

TEST_CASE("a churn loop keeps the heap near its goal over many cycles", "[gc][pacer]") {
  ensure_heap();
  gc_collect();
  gc_stats base;  // what earlier tests left live (held by roots or stale stack words)
  gc_read_stats(&base);
  // 8 MiB live, in a list held by the stack.
  Cell* live = nullptr;
  for (int i = 0; i < (8 << 20) / 32; i++) {
    auto* c = static_cast<Cell*>(gc_alloc(sizeof(Cell), cell_type()));
    c->value = i;
    c->check = ~uint64_t(i);
    gc_write_ptr(&c->next, live);
    live = c;
  }
  uint32_t start = num_gc();
  uint64_t max_inuse = 0, max_goal = 0;
  const uint32_t cycles = std::max(40, scaled(200));  // 200; 40 in the sanitizer builds
  while (num_gc() < start + cycles) {
    churn(1 << 20);
    gc_stats s;
    gc_read_stats(&s);
    max_inuse = std::max(max_inuse, s.heap_inuse);
    max_goal = std::max(max_goal, s.next_gc);
  }
  INFO("before: " << (base.heap_inuse >> 20) << " MiB in use, " << (base.heap_marked >> 20)
       << " MiB marked; max heap in use " << (max_inuse >> 20) << " MiB, max goal "
       << (max_goal >> 20) << " MiB");
  // Live 8 MiB (plus what was live before), GOGC 100: the goal is about twice the marked
  // heap, which counts what was allocated black during the mark too, as Go's does (at most
  // the runway from trigger to goal, a few MiB here); in-use pages stay within 1.5x of the
  // goal plus the spans cached per class.
  // Sanitizer builds get more room: their instrumented markers, beside a second test
  // process on two CPUs, can leave a mark phase long enough for the black allocation to
  // take the goal to 36 MiB (seen once in CI under ASan). The normal build alone stays at
  // 22-23 MiB; beside the torture tests (meson runs two tests at once on two CPUs) CI saw
  // 29.8 MiB once, so its bound is 32 MiB, still below what the first-cycle overshoot of
  // the assist ratio produced (35 MiB, the bug this bound caught, commit 1e4eea4).
  const uint64_t slack = kSanitizerScale > 1 ? (40u << 20) : (32u << 20);
  REQUIRE(max_goal <= 2 * base.heap_marked + slack);
  REQUIRE(max_inuse <= max_goal * 3 / 2 + (4 << 20) + (base.heap_inuse - base.heap_marked));
  uint64_t n = 0;
  for (Cell* c = live; c; c = c->next, n++) REQUIRE(c->check == ~c->value);
  REQUIRE(n == (8 << 20) / 32);
  REQUIRE(verify_failures() == 0);
}

TEST_CASE("a lower GOGC runs more cycles for the same allocation", "[gc][pacer]") {
  ensure_heap();
  std::vector<void*> keep;  // a 4 MiB live set (held in the stack's vector? no: rooted below)
  static void* live_root[1];
  gc_add_root(live_root, sizeof live_root);
  auto** arr = static_cast<void**>(gc_alloc(4096 * 8, nullptr));
  live_root[0] = arr;
  for (int i = 0; i < 4096; i++) gc_write_ptr(&arr[i], gc_alloc(1024, nullptr));
  auto cycles_with = [&](int pct) {
    gc_set_percent(pct);
    gc_collect();
    uint32_t a = num_gc();
    churn(size_t(256 << 20) / size_t(std::min(kSanitizerScale, 4)));
    gc_collect();
    return num_gc() - a;
  };
  uint32_t c50 = cycles_with(50);
  uint32_t c200 = cycles_with(200);
  gc_set_percent(100);
  live_root[0] = nullptr;
  gc_remove_root(live_root);
  INFO("GOGC=50: " << c50 << " cycles, GOGC=200: " << c200 << " cycles");
  REQUIRE(c50 > c200 * 3 / 2);
}

// Go's gcStart: the thread whose allocation crosses the trigger stops the world for the
// sweep termination itself; the controller takes the cycle over for its mark. Two threads
// cross the trigger at once now and then: one cycle starts, and the other thread goes on.
TEST_CASE("cycles the trigger starts begin on the allocating thread and end on the controller",
          "[gc][pacer]") {
  ensure_heap();
  gc_set_percent(100);
  gc_collect();
  uint32_t a = num_gc();
  uint64_t begun0 = test_cycles_begun_by_allocation();
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; i++)
    threads.emplace_back([] {
      gc_thread_attach();
      churn(size_t(64 << 20) / size_t(std::min(kSanitizerScale, 4)));
      gc_thread_detach();
    });
  gc_blocking_begin();
  for (auto& t : threads) t.join();
  gc_blocking_end();
  uint64_t begun = test_cycles_begun_by_allocation() - begun0;
  gc_collect();  // the last cycle begun ends first: gc_collect's cycle comes after it
  uint32_t cycles = num_gc() - a - 1;
  INFO(cycles << " cycles, " << begun << " begun by an allocating thread");
  REQUIRE(cycles >= 3);
  CHECK(begun >= 1);
  CHECK(begun <= cycles);
  REQUIRE(verify_heap(false) == 0);
}

TEST_CASE("GOGC off stops automatic cycles and gc_collect still works", "[gc][pacer]") {
  ensure_heap();
  int old = gc_set_percent(-1);
  gc_collect();
  uint32_t a = num_gc();
  churn(64 << 20);
  REQUIRE(num_gc() == a);
  gc_collect();
  REQUIRE(num_gc() == a + 1);
  REQUIRE(gc_set_percent(old) == -1);
}

TEST_CASE("a shortened forced-GC period starts cycles on its own", "[gc][forced]") {
  ensure_heap();
  int old = gc_set_percent(-1);
  gc_stats s0;
  gc_read_stats(&s0);
  set_force_gc_period(50 * 1000000ull);
  gc_blocking_begin();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  gc_blocking_end();
  set_force_gc_period(0);
  gc_stats s1;
  gc_read_stats(&s1);
  gc_set_percent(old);
  REQUIRE(s1.num_gc >= s0.num_gc + 2);
  REQUIRE(s1.num_forced_gc >= s0.num_forced_gc + 2);
}

TEST_CASE("the scavenger and gc_free_os_memory return free memory to the OS", "[gc][scavenge]") {
  ensure_heap();
  gc_free_os_memory();
  size_t rss0 = os_rss_bytes();
  std::vector<uintptr_t> hidden;
  // 200 MiB held by a root while they are written (so no cycle reuses their pages), then
  // dropped: the next cycle frees them.
  static void* hold[1];
  gc_add_root(hold, sizeof hold);
  on_fresh_thread([&] {
    hold_resident_mib(hold, 200, &hidden);
    for (int i = 0; i < 100000; i++) memset(gc_alloc_noscan(512), 2, 512);
  });
  size_t rss1 = os_rss_bytes();
  // Released bytes are counted from here: the heap's never-used pages count as released too
  // (as Go's HeapReleased), and the 200 MiB are not released yet.
  gc_stats s;
  gc_read_stats(&s);
  const uint64_t released1 = s.heap_released;
  // The array's slots are cleared before it is dropped (drop_population): a stale stack
  // word may keep the array itself (seen under TSan: the address of an arena's first
  // object, which the array was), and it must not keep the 200 MiB with it.
  // On a fresh thread too: dropping reads each slot's old value (the write barrier's), and
  // on this thread's stack those reads left words that kept two of the 200 (a CI run: two
  // words in the frames of the gc_collect below, which no scrub reaches).
  on_fresh_thread([&] { drop_population(hold, 200); });
  // All 200 are freed by the next collection, except what a stale stack word keeps (then
  // for as long as it stays; seen under TSan: the word was a caller's callee-saved register
  // pushed by gc_blocking_begin). collect_until_freed names every holder.
  size_t kept = require_freed_or_stack_held(hidden, 3).kept;
  REQUIRE(kept <= 1);  // one stale word names one 1 MiB object (noscan: it holds nothing)
  // The aged scavenger: with a short delay, the background releases the free pages (and
  // wholly free arenas, which then leave heap_released and heap_sys both).
  gc_read_stats(&s);
  uint64_t sys1 = s.heap_sys;
  // Released since the 200 MiB were in use, wholly free arenas that left the heap included.
  // (Signed: a chunk that leaves takes its never-used pages out of heap_released too.)
  auto released = [&] {
    return int64_t(s.heap_released) - int64_t(released1) + int64_t(sys1) - int64_t(s.heap_sys);
  };
  set_scavenge_delay(20 * 1000000ull);
  for (int i = 0; i < 100; i++) {
    gc_blocking_begin();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gc_blocking_end();
    gc_read_stats(&s);
    if (released() >= int64_t{150} << 20) break;
  }
  set_scavenge_delay(0);
  size_t rss2 = os_rss_bytes();
  INFO("rss before " << (rss0 >> 20) << " MiB, after allocating " << (rss1 >> 20)
                     << " MiB, after scavenging " << (rss2 >> 20) << " MiB");
  REQUIRE(released() >= int64_t{150} << 20);
  REQUIRE(rss1 >= rss0 + (150u << 20));
  // The process's RSS must fall with what was released. Under TSan it also holds the
  // shadow of every page (four times the heap's 200 MiB here), which comes and goes on
  // its own: in suite runs the RSS fell by 127 MiB (1190 -> 1063 MiB), and once the sweep
  // cleared the small spans it frees (writing their shadow too) by 90 MiB (1174 -> 1084),
  // each after 150 MiB and more had been released; so the bound there is 50 MiB, and the
  // released bytes are checked at 150 MiB above in every build.
#if defined(__SANITIZE_THREAD__)
  constexpr size_t kRssDrop = 50u << 20;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  constexpr size_t kRssDrop = 50u << 20;
#else
  constexpr size_t kRssDrop = 150u << 20;
#endif
#else
  constexpr size_t kRssDrop = 150u << 20;
#endif
  REQUIRE(rss2 + kRssDrop <= rss1);
  // gc_free_os_memory: everything free goes at once, wholly free arenas included.
  gc_add_root(hold, sizeof hold);
  on_fresh_thread([&] {
    auto** arr = static_cast<void**>(gc_alloc(100 * sizeof(void*), nullptr));
    hold[0] = arr;
    for (int i = 0; i < 100; i++) {
      void* p = gc_alloc_noscan(1 << 20);
      memset(p, 1, 1 << 20);
      gc_write_ptr(&arr[i], p);
    }
  });
  size_t rss3 = os_rss_bytes();
  drop_population(hold, 100);  // as above
  gc_free_os_memory();
  size_t rss4 = os_rss_bytes();
  INFO("free_os_memory: " << (rss3 >> 20) << " MiB -> " << (rss4 >> 20) << " MiB");
  REQUIRE(rss4 + (80u << 20) <= rss3);
}

// Holds `mib` objects of 1 MiB through a rooted array while they are made and written, then
// drops them and collects until they are freed; returns heap_sys while they were held.
static uint64_t hold_then_drop_mib(int mib) {
  static void* hold[1];
  std::vector<uintptr_t> hidden = rooted_population(hold, mib, 1 << 20, /*fill=*/true);
  gc_stats s;
  gc_read_stats(&s);
  drop_population(hold, mib);
  size_t kept = require_freed_or_stack_held(hidden, 3).kept;
  // Stale stack words may keep one or two (noscan: they hold nothing). Seen under TSan: two
  // arena bases, each named by a word of this thread's stack, kept the arenas' first
  // objects, before the heap stopped placing objects on a chunk's first page.
  REQUIRE(kept <= 2);
  return s.heap_sys;
}

// Go's background scavenger: once the live heap shrinks, the free pages over 10% above the
// heap goal go back to the OS within seconds, not after the scavenge delay (5 minutes here):
// a program that went from a 128 MiB phase to a small one kept the 128 MiB resident.
TEST_CASE("the background scavenger brings resident pages back near the heap goal",
          "[gc][scavenge]") {
  ensure_heap();
  StressCollectionsHeld no_stress;
  static void* hold[1];
  gc_add_root(hold, sizeof hold);
  on_fresh_thread([&] { hold_resident_mib(hold, 128, nullptr); });
  gc_stats s;
  gc_read_stats(&s);
  const uint64_t peak = s.heap_sys - s.heap_released;
  REQUIRE(peak >= (128u << 20));
  on_fresh_thread([&] { drop_population(hold, 128); });
  gc_collect();
  gc_collect();  // the goal follows the small live heap
  uint64_t resident = 0, bound = 0;
  for (int i = 0; i < 200; i++) {  // up to 10 s; a tick is due every second
    gc_read_stats(&s);
    resident = s.heap_sys - s.heap_released;
    bound = s.next_gc + s.next_gc / 10 + (8u << 20);
    if (resident <= bound) break;
    gc_blocking_begin();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gc_blocking_end();
  }
  gc_remove_root(hold);
  INFO("resident at the peak " << (peak >> 20) << " MiB, now " << (resident >> 20)
                               << " MiB, goal " << (s.next_gc >> 20) << " MiB");
  CHECK(resident <= bound);
  CHECK(s.next_gc < (64u << 20));
}

TEST_CASE("wholly free arenas go back to the page source, from gc_free_os_memory and from "
          "the aged scavenger", "[gc][scavenge]") {
  ensure_heap();
  gc_free_os_memory();
  scrub_stack_below();  // the arena bases it handled
  gc_stats s;
  gc_read_stats(&s);
  uint64_t sys0 = s.heap_sys;
  // 256 MiB span four or more 64 MiB arenas: two at least are wholly free once dropped,
  // even with two objects kept by stale words.
  uint64_t sys1 = hold_then_drop_mib(256);
  REQUIRE(sys1 >= sys0 + (192u << 20));
  gc_free_os_memory();
  gc_read_stats(&s);
  INFO("gc_free_os_memory: heap_sys " << (sys0 >> 20) << " -> " << (sys1 >> 20) << " -> "
                                      << (s.heap_sys >> 20) << " MiB");
  REQUIRE(s.heap_sys + (128u << 20) <= sys1);
  scrub_stack_below();
  // The aged scavenger (a short delay), with no gc_free_os_memory: the same.
  uint64_t sys2 = hold_then_drop_mib(256);
  set_scavenge_delay(20 * 1000000ull);
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {
    gc_blocking_begin();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gc_blocking_end();
    gc_read_stats(&s);
  } while (s.heap_sys + (128u << 20) > sys2 && std::chrono::steady_clock::now() < give_up);
  set_scavenge_delay(0);
  INFO("aged scavenger: heap_sys " << (sys2 >> 20) << " -> " << (s.heap_sys >> 20) << " MiB");
  REQUIRE(s.heap_sys + (128u << 20) <= sys2);
}

TEST_CASE("over the memory limit, allocation collects, then calls the OOM handler and "
          "returns NULL; the heap recovers", "[gc][oom]") {
  ensure_heap();
  gc_collect();
  gc_stats s;
  gc_read_stats(&s);
  size_t limit = s.heap_inuse + (64u << 20);
  size_t old_limit = gc_set_memory_limit(limit);
  gc_oom_fn old = gc_set_oom_handler(count_oom);
  g_oom_calls = 0;
  static void* hold[1];
  gc_add_root(hold, sizeof hold);
  int got = 0;
  bool got_null = false, intact = true;
  // On a thread of its own, so no stale word of this stack keeps the array alive later.
  on_fresh_thread([&] {
    auto** arr = static_cast<void**>(gc_alloc(200 * 8, nullptr));
    hold[0] = arr;
    for (int i = 0; i < 200; i++) {
      void* p = gc_alloc_noscan(1 << 20);
      if (!p) {
        got_null = true;
        break;
      }
      static_cast<char*>(p)[0] = char(i);
      gc_write_ptr(&arr[i], p);
      got++;
    }
    // Nothing live was lost.
    for (int i = 0; i < got; i++)
      intact &= gc_base(arr[i]) == arr[i] && static_cast<char*>(arr[i])[0] == char(i);
  });
  REQUIRE(got_null);
  REQUIRE(g_oom_calls >= 1);
  REQUIRE(got >= 40);
  REQUIRE(got < 200);
  REQUIRE(intact);
  // Release (the array's slots too: a stale stack word that still pointed at the array
  // must not keep the megabytes), and the same allocations succeed again.
  on_fresh_thread([&] {
    auto** arr = static_cast<void**>(hold[0]);
    for (int i = 0; i < got; i++) gc_write_ptr(&arr[i], nullptr);
  });
  hold[0] = nullptr;
  gc_collect();
  int again = 0;
  on_fresh_thread([&] {
    for (int i = 0; i < 40; i++) again += gc_alloc_noscan(1 << 20) != nullptr;
  });
  REQUIRE(again == 40);
  gc_set_oom_handler(old);
  gc_set_memory_limit(old_limit);
  gc_remove_root(hold);
}

TEST_CASE("malformed environment values name the variable and keep the default", "[gc][env]") {
  setenv("TRICOLOR_GOGC", "lots", 1);
  setenv("TRICOLOR_MEMLIMIT", "12 parsecs", 1);
  setenv("TRICOLOR_PROCS", "-3", 1);
  gc_options o;
  gc_options_default(&o);
  REQUIRE(o.gc_percent == 100);
  REQUIRE(o.memory_limit == 0);
  REQUIRE(o.procs == 0);
  setenv("TRICOLOR_GOGC", "off", 1);
  setenv("TRICOLOR_MEMLIMIT", "512MiB", 1);
  setenv("TRICOLOR_PROCS", "3", 1);
  gc_options_default(&o);
  REQUIRE(o.gc_percent == -1);
  REQUIRE(o.memory_limit == size_t(512) << 20);
  REQUIRE(o.procs == 3);
  setenv("TRICOLOR_GOGC", "50", 1);
  setenv("TRICOLOR_MEMLIMIT", "1GiB", 1);
  gc_options_default(&o);
  REQUIRE(o.gc_percent == 50);
  REQUIRE(o.memory_limit == size_t(1) << 30);
  // Under a byte is not a count of bytes: it read as 0, no limit, without a word.
  for (const char* v : {"0.5", "0.25B"}) {
    setenv("TRICOLOR_MEMLIMIT", v, 1);
    capture c;
    REQUIRE(capture_begin(&c) == 0);
    gc_options_default(&o);
    char text[1024];
    capture_end(&c, text, sizeof text);
    INFO(v << ": " << text);
    CHECK(o.memory_limit == 0);  // the default
    CHECK(std::string(text).find("TRICOLOR_MEMLIMIT") != std::string::npos);
  }
  setenv("TRICOLOR_MEMLIMIT", "0.5KB", 1);  // 512 bytes
  gc_options_default(&o);
  CHECK(o.memory_limit == 512);
  unsetenv("TRICOLOR_GOGC");
  unsetenv("TRICOLOR_MEMLIMIT");
  unsetenv("TRICOLOR_PROCS");
}

TEST_CASE("statistics add up over cycles", "[gc][stats]") {
  ensure_heap();
  gc_collect();
  gc_stats a;
  gc_read_stats(&a);
  on_fresh_thread([] { churn(16 << 20); });
  gc_collect();
  gc_stats b;
  gc_read_stats(&b);
  REQUIRE(b.num_gc > a.num_gc);
  REQUIRE(b.mallocs - a.mallocs >= (16u << 20) / 64);
  REQUIRE(b.frees - a.frees >= (15u << 20) / 64);
  REQUIRE(b.total_alloc - a.total_alloc >= (16u << 20));
  REQUIRE(b.heap_inuse >= b.heap_alloc);
  REQUIRE(b.heap_sys == b.heap_inuse + b.heap_idle);
  REQUIRE(b.pause_total_ns >= a.pause_total_ns);
  REQUIRE(b.pause_max_ns > 0);
  REQUIRE(b.pause_ns[(b.num_gc + 255) % 256] > 0);
  REQUIRE(b.gc_cpu_fraction > 0);
  REQUIRE(b.gc_cpu_fraction < 1);
  REQUIRE(b.last_gc_ns > 0);
  // Per-class figures: 1000 rooted 64-byte objects show up in their class.
  static void* keep[1000];
  gc_add_root(keep, sizeof keep);
  for (auto& k : keep) k = gc_alloc(64, nullptr);
  gc_collect();
  gc_class_stats cls[80];
  int n = gc_read_class_stats(cls, 80);
  REQUIRE(n == 67);
  uint64_t objs = 0, mallocs = 0, frees = 0;
  for (int i = 0; i < n; i++) {
    objs += cls[i].objects;
    mallocs += cls[i].mallocs;
    frees += cls[i].frees;
  }
  REQUIRE(cls[5].object_size == 64);
  REQUIRE(cls[5].objects >= 1000);
  REQUIRE(cls[5].spans >= 1000 / 128);
  gc_stats c;
  gc_read_stats(&c);
  // Tiny sub-allocations are counted as a malloc and a free by gc_read_stats only (Go's way).
  REQUIRE(objs == c.heap_objects);
  REQUIRE(mallocs - frees == objs);
  gc_remove_root(keep);
}

TEST_CASE("threads allocate and mutate graphs while cycles run back to back", "[gc][threads]") {
  ensure_heap();
  int old = gc_set_percent(10);
  constexpr int kThreads = 3;
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      gc_thread_attach();
      // Each thread keeps an array of 256 lists; it replaces and splices lists at random.
      auto** heads = static_cast<Cell**>(gc_alloc(256 * sizeof(Cell*), nullptr));
      uint64_t rng = 0x9e3779b97f4a7c15ull * (t + 1);
      auto next = [&] { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; };
      while (std::chrono::steady_clock::now() < deadline) {
        for (int k = 0; k < 1000; k++) {
          uint64_t r = next();
          int i = r % 256;
          if (r & 0x100) {
            auto* c = static_cast<Cell*>(gc_alloc(sizeof(Cell), cell_type()));
            c->value = r;
            c->check = ~r;
            gc_write_ptr(&c->next, heads[i]);
            gc_write_ptr(&heads[i], c);
          } else if (r & 0x200) {
            gc_write_ptr(&heads[i], nullptr);
          } else {
            int j = (r >> 16) % 256;
            if (heads[j]) gc_write_ptr(&heads[i], heads[j]->next);
          }
        }
        for (int i = 0; i < 256; i++) {
          int len = 0;
          for (Cell* c = heads[i]; c && len < 100000; c = c->next, len++)
            if (c->check != ~c->value || gc_base(c) != c) errors++;
        }
      }
      gc_thread_detach();
    });
  }
  uint32_t a = num_gc();
  gc_blocking_begin();
  for (auto& th : ts) th.join();
  gc_blocking_end();
  gc_set_percent(old);
  INFO((num_gc() - a) << " cycles ran");
  REQUIRE(errors == 0);
  REQUIRE(num_gc() - a >= 3);
  REQUIRE(verify_failures() == 0);
}

// The collector's CPU time (gc_cpu_ns, gctrace, the pacer's utilisation) counts what the
// mark workers do. The one mutator spins through safepoints without allocating (no assist)
// while a background cycle marks a long list: the marking is the workers' (the controller
// only scans the roots and parked stacks), so a good part of the process's CPU over the
// cycle must show up in gc_cpu_ns. Almost none did when the workers added their time as
// their loop ended, which is when the world stops, after the controller had read the sum.
TEST_CASE("gc_cpu_ns counts the mark workers' time", "[gc][stats]") {
  ensure_heap();
  // Stress builds: the figures are the background cycle's alone; and while the list grows,
  // a stress collection about every 100 allocations (each allocation polls, every 100th
  // poll collects) traced and verified all of it each time: some 10,000 cycles, over 10
  // minutes under ASan.
  StressCollectionsHeld no_stress;
  static void* hold[1];
  gc_add_root(hold, sizeof hold);
  const int cells = 1 << 20;  // 32 MiB of list cells to trace
  on_fresh_thread([&] {
    Cell* head = nullptr;
    for (int i = 0; i < cells; i++) {
      auto* c = static_cast<Cell*>(gc_alloc(sizeof(Cell), cell_type()));
      c->value = uint64_t(i);
      c->check = ~uint64_t(i);
      gc_write_ptr(&c->next, head);
      head = c;
    }
    gc_write_ptr(&hold[0], head);
  });
  gc_collect();  // what was allocated is swept; the next cycle only marks
  gc_stats a, b;
  gc_read_stats(&a);
  timespec t0, t1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
  test_request_background_cycle();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    for (int i = 0; i < 1000; i++) gc_alloc_noscan(64);
    gc_read_stats(&b);
  } while (b.num_gc == a.num_gc && std::chrono::steady_clock::now() < deadline);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
  REQUIRE(b.num_gc > a.num_gc);
  uint64_t process = uint64_t(t1.tv_sec - t0.tv_sec) * 1000000000u + uint64_t(t1.tv_nsec) -
                     uint64_t(t0.tv_nsec);
  // gc_cpu_ns counts a pause as the whole machine's (Go's convention: pause x procs), and
  // debug builds run the heap verifier in the pause: take the pauses and the assists out,
  // what is left is the workers' and the controller's marking.
  uint64_t gc = b.gc_cpu_ns - a.gc_cpu_ns, assist = b.assist_ns - a.assist_ns;
  uint64_t pauses = b.pause_total_ns - a.pause_total_ns;
  uint64_t background = gc - assist - std::min(gc - assist, pauses * uint64_t(configured_procs()));
  uint64_t outside_pauses = process - std::min(process, pauses);
  INFO("process CPU " << process / 1000 << " us, gc_cpu_ns " << gc / 1000 << " us, assists "
       << assist / 1000 << " us, pauses " << pauses / 1000 << " us");
  CHECK(background * 5 >= outside_pauses);
  // The workers' part is counted apart too (mark_worker_ns, the controller's included),
  // over a mark phase that took some time.
  uint64_t workers = b.mark_worker_ns - a.mark_worker_ns;
  INFO("mark workers " << workers / 1000 << " us, mark phase "
       << (b.mark_ns - a.mark_ns) / 1000 << " us");
  CHECK(workers > 0);
  CHECK(workers + assist <= gc);
  CHECK(b.mark_ns > a.mark_ns);
  hold[0] = nullptr;
  gc_remove_root(hold);
}

// Go's idle mark workers: with no thread running mutator code, the worker marks flat out,
// beyond its 25% share, and that part is idle marking: in gc_cpu_ns, counted apart in
// idle_mark_ns, left out of gc_cpu_fraction. (No allocation meanwhile: a parked assist
// would make the worker hurry, which is not idle marking.)
TEST_CASE("marking on procs no thread runs on is idle marking", "[gc][stats]") {
  ensure_heap();
  if (configured_procs() < 2) {
    WARN("one proc: the worker's share is all of it, nothing is idle marking");
    return;
  }
  // As above (the list took over 10 minutes to build in a stress build under ASan); and a
  // stress collection in the wait below would end it before the background cycle.
  StressCollectionsHeld no_stress;
  static void* hold[1];
  gc_add_root(hold, sizeof hold);
  on_fresh_thread([&] {
    Cell* head = nullptr;
    for (int i = 0; i < (1 << 20); i++) {  // 32 MiB of list cells to trace
      auto* c = static_cast<Cell*>(gc_alloc(sizeof(Cell), cell_type()));
      gc_write_ptr(&c->next, head);
      head = c;
    }
    gc_write_ptr(&hold[0], head);
  });
  gc_collect();
  gc_stats a, b;
  gc_read_stats(&a);
  test_request_background_cycle();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  do {
    gc_blocking_begin();  // not running mutator code: the procs are idle
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    gc_blocking_end();
    gc_read_stats(&b);
  } while (b.num_gc == a.num_gc && std::chrono::steady_clock::now() < deadline);
  REQUIRE(b.num_gc > a.num_gc);
  uint64_t idle = b.idle_mark_ns - a.idle_mark_ns, gc = b.gc_cpu_ns - a.gc_cpu_ns;
  INFO("idle marking " << idle / 1000 << " us of " << gc / 1000 << " us");
  CHECK(idle > 0);
  CHECK(idle <= gc);
  hold[0] = nullptr;
  gc_remove_root(hold);
}

// The scavenger's batches leave the free runs while they are released, without the heap
// lock: a stress of two threads allocating and dropping objects of 16 B to 300 KiB (each
// checked when cleared on allocation and again before it is dropped) while collections run
// and another thread releases every free page again and again. A released page that an
// object still used, or one handed out during its release, reads as zero under the object's
// pattern. Run under ASan and TSan in the suite.
TEST_CASE("the scavenger releasing free pages while threads allocate loses no object",
          "[gc][scavenge][stress]") {
  ensure_heap();
  constexpr int kThreads = 2, kRing = 64;
  static uint64_t* ring[kThreads][kRing];
  gc_add_root(ring, sizeof ring);
  const int rounds = tricolor::test::scaled(20000);
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<uint64_t> released{0};
  std::thread scavenger([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      released += heap().scavenge_some(SIZE_MAX, monotonic_ns(), 0);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      gc_thread_attach();
      uint64_t rng = 0x9e3779b97f4a7c15ull * uint64_t(t + 1);
      for (int i = 0; i < rounds; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        size_t words = rng % 8 == 0 ? 2 + rng % (300 * 128) : 2 + rng % 64;  // to 300 KiB
        auto* p = static_cast<uint64_t*>(gc_alloc_noscan(words * 8));
        if (!p) {
          bad++;
          continue;
        }
        for (size_t w = 0; w < words; w += 97) bad += p[w] != 0;  // cleared
        p[0] = words;
        for (size_t w = 1; w < words; w++) p[w] = uintptr_t(p) ^ w;
        uint64_t*& slot = ring[t][i % kRing];
        if (uint64_t* old = slot) {
          size_t n = old[0];
          for (size_t w = 1; w < n; w += 31) bad += old[w] != (uintptr_t(old) ^ w);
        }
        slot = p;
        if (i % 4096 == 0) gc_collect();
      }
      gc_thread_detach();
    });
  }
  gc_blocking_begin();
  for (auto& th : ts) th.join();
  stop = true;
  scavenger.join();
  gc_blocking_end();
  for (auto& r : ring)
    for (uint64_t*& p : r) p = nullptr;
  gc_remove_root(ring);
  INFO("released " << (released.load() >> 20) << " MiB while the threads allocated");
  CHECK(bad.load() == 0);
  CHECK(released.load() > 0);
  gc_collect();
  CHECK(verify_heap(false) == 0);
}
