// Misuse of the public API on a running heap (docs/misuse.md): each bad call returns its
// documented error value or is ignored with a message, and a live structure built before
// the misuse is intact afterwards.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <sys/sysinfo.h>

#include "capture.h"
#include "tricolor/fiber.h"
#include "tricolor/gc.h"

namespace {

struct Cell {
  Cell* next;
  uint64_t value;
};

const gc_type* cell_type() {
  static const gc_type* t = [] {
    size_t offs[] = {offsetof(Cell, next)};
    return gc_type_new("Cell", sizeof(Cell), offs, 1);
  }();
  return t;
}

// A list of 2000 cells held by a registered root: built once, checked after each case.
Cell* g_list_root[1];

void ensure_heap() {
  static bool once = [] {
    REQUIRE(gc_init(nullptr) == 0);
    gc_add_root(g_list_root, sizeof g_list_root);
    for (uint64_t i = 0; i < 2000; i++) {
      auto* c = static_cast<Cell*>(gc_alloc(sizeof(Cell), cell_type()));
      REQUIRE(c);
      gc_write_ptr(&c->next, g_list_root[0]);
      c->value = i * 7 + 1;
      g_list_root[0] = c;
    }
    return true;
  }();
  (void)once;
}

// The live structure is intact: nothing live was lost to the misuse.
void check_live_list() {
  gc_collect();
  uint64_t i = 2000;
  for (Cell* c = g_list_root[0]; c; c = c->next) {
    --i;
    REQUIRE(gc_base(c) == c);
    REQUIRE(c->value == i * 7 + 1);
  }
  REQUIRE(i == 0);
}

template <class F>
void on_thread(F&& f) {
  std::thread th(f);
  gc_blocking_begin();
  th.join();
  gc_blocking_end();
}

// What f wrote to stderr (the library's messages), f run with fd 2 captured.
template <class F>
std::string stderr_of(F&& f) {
  capture c;
  REQUIRE(capture_begin(&c) == 0);
  f();
  static char buf[16384];
  return capture_end(&c, buf, sizeof buf);
}

size_t g_oom_request = 0;
int g_oom_calls = 0;
void count_oom(size_t n) {
  g_oom_request = n;
  g_oom_calls++;
}

void noop_fiber(void*) {}

}  // namespace

TEST_CASE("gc_alloc of size 0 returns distinct minimum-size objects", "[api][misuse]") {
  ensure_heap();
  void* a = gc_alloc(0, nullptr);
  void* b = gc_alloc(0, nullptr);
  void* c = gc_alloc_noscan(0);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  REQUIRE(a != b);
  REQUIRE(gc_size(a) >= 8);
  REQUIRE(gc_base(c) == c);
  check_live_list();
}

TEST_CASE("absurd sizes return NULL with a message and no OOM handler call", "[api][misuse]") {
  ensure_heap();
  gc_set_oom_handler(count_oom);
  g_oom_calls = 0;
  for (size_t size : {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2, size_t{1} << 47}) {
    CHECK_THAT(stderr_of([&] { CHECK(gc_alloc(size, nullptr) == nullptr); }),
               Catch::Contains("gc_alloc(" + std::to_string(size) + "): the size is beyond"));
    CHECK(gc_alloc(size, cell_type()) == nullptr);
    CHECK(gc_alloc_noscan(size) == nullptr);
  }
  CHECK(g_oom_calls == 0);
  gc_set_oom_handler(nullptr);
  check_live_list();
}

TEST_CASE("a size the memory limit cannot hold calls the OOM handler and returns NULL",
          "[api][misuse]") {
  ensure_heap();
  gc_set_oom_handler(count_oom);
  g_oom_calls = 0;
  size_t old = gc_set_memory_limit(1);  // one byte: no new span fits
  CHECK(gc_alloc_noscan(1 << 20) == nullptr);
  CHECK(g_oom_calls == 1);
  CHECK(g_oom_request == size_t{1} << 20);
  gc_set_memory_limit(old);
  CHECK(gc_alloc_noscan(1 << 20) != nullptr);
  CHECK(gc_set_oom_handler(nullptr) == count_oom);
  check_live_list();
}

TEST_CASE("a size beyond the machine's memory and swap calls the OOM handler at once",
          "[api][misuse]") {
  ensure_heap();
  struct sysinfo si;
  REQUIRE(sysinfo(&si) == 0);
  unsigned __int128 backable = (unsigned __int128)(si.totalram + si.totalswap) * si.mem_unit;
  size_t size = size_t{1} << 46;  // the largest size the heap takes
  if (backable >= size) SUCCEED("this machine's memory and swap reach 2^46 bytes");
  else {
    gc_set_oom_handler(count_oom);
    g_oom_calls = 0;
    // Mapped without a reservation, such a span wrote a page map of gigabytes for seconds.
    CHECK_THAT(stderr_of([&] { CHECK(gc_alloc_noscan(size) == nullptr); }),
               Catch::Contains("gc_alloc_noscan(" + std::to_string(size) + "): more than the "
                               "machine's memory and swap"));
    CHECK(g_oom_calls == 1);
    CHECK(g_oom_request == size);
    CHECK(gc_alloc(size_t(backable) + 4096, nullptr) == nullptr);
    CHECK(g_oom_calls == 2);
    gc_set_oom_handler(nullptr);
  }
  check_live_list();
}

TEST_CASE("allocation inside a blocking region returns NULL with a message", "[api][misuse]") {
  ensure_heap();
  // The collector counts the thread as stopped and flushes its runs meanwhile: allocating
  // there corrupted the heap (a client's list built inside a region).
  void* got[6];
  std::string out = stderr_of([&] {
    gc_blocking_begin();
    got[0] = gc_alloc(sizeof(Cell), cell_type());  // gc.h's inline path
    got[1] = gc_alloc_noscan(24);
    got[2] = gc_alloc_noscan(3);                    // tiny
    got[3] = (gc_alloc)(sizeof(Cell), cell_type()); // the library's function
    got[4] = (gc_alloc_noscan)(100 << 10);          // large
    gc_blocking_begin();                            // nested: still inside
    got[5] = gc_alloc(64, nullptr);
    gc_blocking_end();
    gc_blocking_end();
  });
  for (void* p : got) CHECK(p == nullptr);
  CHECK_THAT(out, Catch::Contains("gc_alloc(16) inside gc_blocking_begin/end"));
  CHECK_THAT(out, Catch::Contains("gc_alloc_noscan(24) inside gc_blocking_begin/end"));
  CHECK_THAT(out, Catch::Contains("gc_alloc_noscan(102400) inside gc_blocking_begin/end"));
  // After the region, allocation works, by both paths.
  auto* c = static_cast<Cell*>(gc_alloc(sizeof(Cell), cell_type()));
  REQUIRE(c != nullptr);
  CHECK(gc_base(c) == c);
  CHECK(gc_alloc_noscan(3) != nullptr);
  check_live_list();
}

namespace {
[[gnu::noinline]] void make_garbage(int n) {
  for (int i = 0; i < n; i++) REQUIRE(gc_alloc(sizeof(Cell), cell_type()) != nullptr);
}
}  // namespace

TEST_CASE("gc_collect inside a blocking region collects and sweeps", "[api][misuse]") {
  ensure_heap();
  gc_collect();
  make_garbage(5000);
  gc_stats before, after;
  gc_read_stats(&before);
  // The caller counts as stopped throughout: the background sweeper sweeps for it.
  gc_blocking_begin();
  gc_collect();
  gc_blocking_end();
  gc_read_stats(&after);
  CHECK(after.num_gc == before.num_gc + 1);
  CHECK(after.frees >= before.frees + 4000);  // the garbage was swept before the return
  check_live_list();
}

TEST_CASE("gc_type_new sizes its pointer map by the last pointer, not by the type",
          "[api][misuse]") {
  ensure_heap();
  // 2^40 bytes with one pointer at its start: a map of one word (it was 2^40 / 64 bytes).
  size_t first[] = {0};
  const gc_type* t = gc_type_new("Huge", size_t{1} << 40, first, 1);
  REQUIRE(t != nullptr);
  CHECK(gc_type_new("HugeNoPointers", size_t{1} << 40, nullptr, 0) != nullptr);
  // A small object of that type is scanned by its first word: its target stays alive.
  static void* holder[1];
  gc_add_root(holder, sizeof holder);
  auto** obj = static_cast<void**>(gc_alloc(64, t));
  REQUIRE(obj != nullptr);
  holder[0] = obj;
  gc_write_ptr(&obj[0], gc_alloc_noscan(32));
  uintptr_t target = reinterpret_cast<uintptr_t>(obj[0]) ^ 0x5a5a5a5a5a5a5a5aull;
  obj = nullptr;
  gc_collect();
  CHECK(gc_base(reinterpret_cast<void*>(target ^ 0x5a5a5a5a5a5a5a5aull)) != nullptr);
  gc_remove_root(holder);
  check_live_list();
}

TEST_CASE("gc_type_new rejects bad layouts with NULL", "[api][misuse]") {
  ensure_heap();
  size_t good[] = {0, 8};
  size_t misaligned[] = {4};
  size_t outside[] = {16};
  CHECK(gc_type_new("zero", 0, nullptr, 0) == nullptr);
  CHECK(gc_type_new("null offsets", 16, nullptr, 2) == nullptr);
  CHECK(gc_type_new("misaligned", 16, misaligned, 1) == nullptr);
  CHECK(gc_type_new("outside", 16, outside, 1) == nullptr);
  CHECK(gc_type_new("odd size", 12, good, 1) == nullptr);
  CHECK(gc_type_new("huge", SIZE_MAX, good, 1) == nullptr);
  const gc_type* unnamed = gc_type_new(nullptr, 16, good, 2);
  REQUIRE(unnamed != nullptr);
  CHECK(strlen(gc_type_name(unnamed)) > 0);
  CHECK(gc_type_name(nullptr) != nullptr);
  // A type with no pointer is a noscan type; an object smaller than its type is scanned
  // only within the object.
  const gc_type* flat = gc_type_new("flat", 24, nullptr, 0);
  REQUIRE(flat);
  CHECK(gc_alloc(24, flat) != nullptr);
  const gc_type* big = gc_type_new("big", 4096, good, 2);
  REQUIRE(big);
  CHECK(gc_alloc(16, big) != nullptr);
  check_live_list();
}

TEST_CASE("gc_base and gc_size of pointers outside the heap are NULL and 0", "[api][misuse]") {
  ensure_heap();
  int local = 0;
  void* m = malloc(64);
  const void* odd[] = {nullptr, &local, m, reinterpret_cast<void*>(1),
                       reinterpret_cast<void*>(4095), reinterpret_cast<void*>(UINTPTR_MAX),
                       reinterpret_cast<void*>(uintptr_t{1} << 47), reinterpret_cast<void*>(&check_live_list)};
  for (const void* p : odd) {
    CHECK(gc_base(p) == nullptr);
    CHECK(gc_size(p) == 0);
  }
  free(m);
  // One past the end of an object belongs to the next slot or to nothing, never to it.
  void* a = gc_alloc_noscan(4096);
  REQUIRE(a);
  CHECK(gc_base(static_cast<char*>(a) + 4095) == a);
  CHECK(gc_base(static_cast<char*>(a) + gc_size(a)) != a);
  check_live_list();
}

TEST_CASE("gc_write_ptr into a slot outside the heap is a plain store", "[api][misuse]") {
  ensure_heap();
  void* outside_slot = nullptr;
  void** malloc_slot = static_cast<void**>(malloc(sizeof(void*)));
  *malloc_slot = nullptr;
  void* obj = gc_alloc(32, nullptr);
  gc_write_ptr(&outside_slot, obj);
  gc_write_ptr(malloc_slot, obj);
  CHECK(outside_slot == obj);
  CHECK(*malloc_slot == obj);
  // The same while the barrier is on: a collection runs on another thread meanwhile.
  std::atomic<bool> stop{false};
  std::thread collector([&] {
    while (!stop.load()) gc_collect();  // an unattached thread may call gc_collect
  });
  for (int i = 0; i < 200000; i++) {
    void* v = (i & 1) ? obj : nullptr;
    gc_write_ptr(&outside_slot, v);
    gc_write_ptr(malloc_slot, v);
    CHECK((outside_slot == v && *malloc_slot == v));
    if (i % 1000 == 0) gc_safepoint();
  }
  stop.store(true);
  gc_blocking_begin();
  collector.join();
  gc_blocking_end();
  free(malloc_slot);
  check_live_list();
}

TEST_CASE("roots: NULL, empty and unknown ranges are ignored with a message", "[api][misuse]") {
  ensure_heap();
  static void* area[4];
  CHECK_THAT(stderr_of([] { gc_add_root(nullptr, 64); }),
             Catch::Contains("gc_add_root") && Catch::Contains("NULL start"));
  // A range past the end of the address space is refused, not scanned into a fault.
  CHECK_THAT(stderr_of([] { gc_add_root(area, SIZE_MAX); }),
             Catch::Contains("gc_add_root") && Catch::Contains("past the end of the address space"));
  CHECK_THAT(stderr_of([] { gc_remove_root(area); }), Catch::Contains("no root registered"));
  CHECK_THAT(stderr_of([] { gc_add_root(area, 0); }), Catch::Contains("gc_add_root"));
  CHECK_THAT(stderr_of([] { gc_remove_root(nullptr); }), Catch::Contains("gc_remove_root"));
  CHECK_THAT(stderr_of([] { gc_remove_root(area); }),  // never added
             Catch::Contains("gc_remove_root") && Catch::Contains("no root registered"));
  CHECK_THAT(stderr_of([] { gc_remove_root(g_list_root + 1); }),  // inside a root, not its start
             Catch::Contains("gc_remove_root"));
  // Registered twice, removed twice: the second removal finds the second registration.
  gc_add_root(area, sizeof area);
  gc_add_root(area, sizeof area);
  CHECK(stderr_of([] { gc_remove_root(area); }).empty());
  CHECK(stderr_of([] { gc_remove_root(area); }).empty());
  CHECK_THAT(stderr_of([] { gc_remove_root(area); }), Catch::Contains("gc_remove_root"));  // now unknown
  check_live_list();             // the list's own root is still registered
}

TEST_CASE("a misuse repeated in a loop does not flood stderr", "[api][misuse]") {
  ensure_heap();
  static int never_added;
  auto lines = [](const std::string& out) {
    size_t n = 0;
    for (char c : out) n += c == '\n';
    return n;
  };
  // At most 100 messages of one kind a second: 5000 calls print a small part of them
  // however slow the machine (a build with sanitizers) is.
  std::string out = stderr_of([] {
    for (int i = 0; i < 5000; i++) gc_remove_root(&never_added);
  });
  CHECK(lines(out) >= 50);  // earlier tests may have used part of this second's 100
  CHECK(lines(out) <= 2500);
  CHECK_THAT(out, Catch::Contains("no root registered"));
  // The next one after the second is out says how many were left out.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  std::string later = stderr_of([] { gc_remove_root(&never_added); });
  CHECK_THAT(later, Catch::Contains("more messages like the next one were left out"));
  CHECK_THAT(later, Catch::Contains("no root registered"));
  check_live_list();
}

TEST_CASE("an unattached thread gets NULL from the allocator and no-ops elsewhere",
          "[api][misuse]") {
  ensure_heap();
  void* results[4] = {reinterpret_cast<void*>(1), reinterpret_cast<void*>(1)};
  void* slot = nullptr;
  void* obj = gc_alloc(16, nullptr);
  std::string said;
  gc_blocking_begin();  // the other thread runs while this one waits for its output
  said = stderr_of([&] {
    std::thread th([&] {
      results[0] = gc_alloc(16, nullptr);
      results[1] = gc_alloc_noscan(8);
      gc_safepoint();
      gc_blocking_begin();
      gc_blocking_end();
      gc_thread_detach();         // message: not attached
      gc_write_ptr(&slot, obj);   // a store; shades through the collector if marking
    });
    th.join();
  });
  gc_blocking_end();
  CHECK_THAT(said, Catch::Contains("gc_alloc(16) from a thread that is not attached"));
  CHECK_THAT(said, Catch::Contains("gc_alloc_noscan(8) from a thread that is not attached"));
  CHECK_THAT(said, Catch::Contains("gc_thread_detach called on a thread that is not attached"));
  CHECK(results[0] == nullptr);
  CHECK(results[1] == nullptr);
  CHECK(slot == obj);
  check_live_list();
}

TEST_CASE("attach twice is one attachment; detach twice is a message", "[api][misuse]") {
  ensure_heap();
  int rc1 = -2, rc2 = -2;
  void* after = reinterpret_cast<void*>(1);
  std::string second_attach, second_detach;
  on_thread([&] {
    rc1 = gc_thread_attach();
    second_attach = stderr_of([&] { rc2 = gc_thread_attach(); });
    void* p = gc_alloc(64, nullptr);
    (void)p;
    gc_thread_detach();
    second_detach = stderr_of([] { gc_thread_detach(); });
    after = gc_alloc(64, nullptr);  // unattached again: NULL
  });
  CHECK(second_attach.empty());
  CHECK_THAT(second_detach, Catch::Contains("gc_thread_detach"));
  CHECK(rc1 == 0);
  CHECK(rc2 == 0);
  CHECK(after == nullptr);
  check_live_list();
}

TEST_CASE("gc_blocking_end without gc_blocking_begin is a message", "[api][misuse]") {
  ensure_heap();
  CHECK_THAT(stderr_of([] { gc_blocking_end(); }), Catch::Contains("gc_blocking_end"));
  CHECK_THAT(stderr_of([] { gc_blocking_end(); }), Catch::Contains("gc_blocking_end"));
  // Nested regions still pair up afterwards.
  gc_blocking_begin();
  gc_blocking_begin();
  gc_blocking_end();
  gc_blocking_end();
  CHECK(gc_alloc(32, nullptr) != nullptr);
  check_live_list();
}

TEST_CASE("control calls accept any value", "[api][misuse]") {
  ensure_heap();
  int old = gc_set_percent(-12345);
  CHECK(gc_set_percent(INT_MAX) == -1);  // every negative value means off
  CHECK(gc_set_percent(0) == INT_MAX);
  for (int i = 0; i < 1000; i++) CHECK(gc_alloc(256, nullptr) != nullptr);  // GOGC 0
  CHECK(gc_set_percent(INT_MIN) == 0);
  gc_set_percent(old);
  size_t lim = gc_set_memory_limit(SIZE_MAX);
  CHECK(gc_alloc(1 << 16, nullptr) != nullptr);
  CHECK(gc_set_memory_limit(lim) == SIZE_MAX);
  gc_read_stats(nullptr);
  CHECK(gc_read_class_stats(nullptr, 100) > 0);
  gc_class_stats cs[2];
  CHECK(gc_read_class_stats(cs, -5) > 0);
  CHECK(gc_read_class_stats(cs, 2) > 0);
  gc_options_default(nullptr);
  CHECK_THAT(stderr_of([] { CHECK(gc_init(nullptr) == -1); }),  // already running
             Catch::Contains("gc_init called twice"));
  gc_options bad;
  gc_options_default(&bad);
  bad.procs = -4;
  CHECK_THAT(stderr_of([&] { CHECK(gc_init(&bad) == -1); }),  // running: that comes first
             Catch::Contains("gc_init called twice"));
  gc_free_os_memory();
  check_live_list();
}

TEST_CASE("fiber calls outside gc_run fail cleanly", "[api][misuse]") {
  ensure_heap();
  CHECK_THAT(stderr_of([] { CHECK(gc_go(noop_fiber, nullptr) == nullptr); }),
             Catch::Contains("gc_go called outside gc_run"));
  CHECK_THAT(stderr_of([] { CHECK(gc_run(nullptr, nullptr) == -1); }),
             Catch::Contains("gc_run(NULL)"));
  CHECK(gc_fiber_self() == nullptr);
  // On a plain attached thread: gc_yield and gc_sleep act on the thread, silently.
  CHECK(stderr_of([] {
          gc_yield();
          gc_sleep(0);
          gc_sleep(1000);
        }).empty());
  CHECK_THAT(stderr_of([] { gc_join(nullptr); }), Catch::Contains("gc_join(NULL)"));
  static int not_a_fiber;
  CHECK_THAT(stderr_of([] { gc_join(reinterpret_cast<gc_fiber*>(&not_a_fiber)); }),
             Catch::Contains("gc_join") && Catch::Contains("no gc_run is running"));
  check_live_list();
}

namespace {

// Inside gc_run: the misuses of the scheduler calls, each with its message. Results are
// collected here and checked by the test on its own thread.
struct FiberMisuse {
  std::string nested_run, join_null, join_self, join_twice, shutdown, go_null;
  int nested_rc = 0;
  gc_fiber* go_null_result = reinterpret_cast<gc_fiber*>(1);
  bool joined = false;
  int child_ran = 0;
};
FiberMisuse g_fm;
// fd 2 is the process's, and fibers run on two threads: the self-joining fiber captures
// only after the main fiber's own captures are over (capture.h: one capture at a time).
std::atomic<bool> g_main_captures_done{false};

void child_fiber(void*) {
  g_fm.child_ran++;
  gc_yield();
}

void self_join_fiber(void*) {
  while (!g_main_captures_done.load()) gc_yield();
  g_fm.join_self = stderr_of([] { gc_join(gc_fiber_self()); });
}

void misuse_main(void*) {
  g_fm.nested_run = stderr_of([] { g_fm.nested_rc = gc_run(noop_fiber, nullptr); });
  g_fm.join_null = stderr_of([] { gc_join(nullptr); });
  g_fm.go_null = stderr_of([] { g_fm.go_null_result = gc_go(nullptr, nullptr); });
  gc_fiber* self_joiner = gc_go(self_join_fiber, nullptr);
  gc_fiber* child = gc_go(child_fiber, nullptr);
  gc_join(child);
  g_fm.joined = true;
  g_fm.join_twice = stderr_of([&] { gc_join(child); });  // its record is free, not reused yet
  g_main_captures_done = true;
  gc_join(self_joiner);
  g_fm.shutdown = stderr_of([] { gc_shutdown(); });
  gc_yield();
  gc_sleep(0);
}

}  // namespace

TEST_CASE("scheduler calls misused inside gc_run are refused with a message", "[api][misuse]") {
  ensure_heap();
  g_fm = FiberMisuse{};
  g_main_captures_done = false;
  REQUIRE(gc_run(misuse_main, nullptr) == 0);
  CHECK(g_fm.nested_rc == -1);
  CHECK_THAT(g_fm.nested_run, Catch::Contains("gc_run called while the scheduler is already running"));
  CHECK_THAT(g_fm.join_null, Catch::Contains("gc_join(NULL)"));
  CHECK(g_fm.go_null_result == nullptr);
  CHECK_THAT(g_fm.go_null, Catch::Contains("gc_go(NULL"));
  CHECK_THAT(g_fm.join_self, Catch::Contains("gc_join: a fiber cannot join itself"));
  CHECK(g_fm.joined);
  CHECK(g_fm.child_ran == 1);
  CHECK_THAT(g_fm.join_twice, Catch::Contains("gc_join") && Catch::Contains("already joined"));
  CHECK_THAT(g_fm.shutdown, Catch::Contains("gc_shutdown called while gc_run is running"));
  // The heap survived the refused gc_shutdown, and the scheduler runs again.
  CHECK(gc_alloc(32, nullptr) != nullptr);
  REQUIRE(gc_run(noop_fiber, nullptr) == 0);
  check_live_list();
}

TEST_CASE("gc_write_ptr into slots outside the heap, and into NULL", "[api][misuse]") {
  ensure_heap();
  void* obj = gc_alloc(32, nullptr);
  CHECK_THAT(stderr_of([&] { gc_write_ptr(nullptr, obj); }),
             Catch::Contains("gc_write_ptr(NULL"));
  static void* global_slot;
  void* stack_slot = nullptr;
  CHECK(stderr_of([&] {
          gc_write_ptr(&global_slot, obj);
          gc_write_ptr(&stack_slot, obj);
        }).empty());
  CHECK(global_slot == obj);
  CHECK(stack_slot == obj);
  global_slot = nullptr;
  check_live_list();
}

TEST_CASE("malformed environment values are reported and the defaults used", "[api][misuse]") {
  struct Case {
    const char* var;
    const char* value;
  };
  const Case bad[] = {
      {"TRICOLOR_GOGC", "abc"},       {"TRICOLOR_GOGC", "100x"},     {"TRICOLOR_GOGC", ""},
      {"TRICOLOR_GOGC", "-5"},        {"TRICOLOR_GOGC", "99999999999999999999"},
      {"TRICOLOR_MEMLIMIT", "12XB"},  {"TRICOLOR_MEMLIMIT", "-1"},   {"TRICOLOR_MEMLIMIT", "nan"},
      {"TRICOLOR_MEMLIMIT", "1e400"}, {"TRICOLOR_MEMLIMIT", "MiB"},  {"TRICOLOR_MEMLIMIT", "1e30GiB"},
      {"TRICOLOR_PROCS", "0"},        {"TRICOLOR_PROCS", "-3"},      {"TRICOLOR_PROCS", "100000"},
      {"TRICOLOR_PROCS", "two"},      {"TRICOLOR_GCTRACE", "2"},     {"TRICOLOR_GCTRACE", "yes"},
      {"TRICOLOR_HEAPTRACE", ""},
  };
  gc_options def;
  for (const char* v : {"TRICOLOR_GOGC", "TRICOLOR_MEMLIMIT", "TRICOLOR_PROCS", "TRICOLOR_GCTRACE",
                        "TRICOLOR_HEAPTRACE"})
    unsetenv(v);
  gc_options_default(&def);
  for (const Case& c : bad) {
    INFO(c.var << "=\"" << c.value << "\"");
    setenv(c.var, c.value, 1);
    gc_options o;
    memset(&o, 0x5a, sizeof o);
    std::string said = stderr_of([&] { gc_options_default(&o); });
    unsetenv(c.var);
    CHECK_THAT(said, Catch::Contains(std::string(c.var) + "=\"" + c.value + "\" is not valid"));
    CHECK(o.gc_percent == def.gc_percent);
    CHECK(o.memory_limit == def.memory_limit);
    CHECK(o.procs == def.procs);
    CHECK(o.gctrace == def.gctrace);
    CHECK(o.heap_trace == def.heap_trace);
  }
  // Well-formed values still work.
  setenv("TRICOLOR_GOGC", "off", 1);
  setenv("TRICOLOR_MEMLIMIT", "1.5GiB", 1);
  gc_options o;
  gc_options_default(&o);
  unsetenv("TRICOLOR_GOGC");
  unsetenv("TRICOLOR_MEMLIMIT");
  CHECK(o.gc_percent < 0);
  CHECK(o.memory_limit == size_t{3} << 29);
}
