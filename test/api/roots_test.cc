// gc_add_root / gc_remove_root with many roots: removal in any order removes exactly the
// registration asked for, objects held by the remaining roots survive a collection and those
// whose roots went are freed. Public API only (the root set's index is lib/gc/roots.cc's own).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "capture.h"
#include "support/scrub.h"
#include "tricolor/gc.h"

namespace {

void ensure_heap() {
  static bool once = [] {
    REQUIRE(gc_init(nullptr) == 0);
    return true;
  }();
  (void)once;
}

// What the library writes to stderr while f runs.
template <class F>
std::string stderr_of(F&& f) {
  capture c;
  if (capture_begin(&c) != 0) return "<capture failed>";
  f();
  char buf[4096];
  return capture_end(&c, buf, sizeof buf);
}

// Runs f on a new attached thread and waits for it, so that the heap addresses f handles
// are not left on this thread's stack for the conservative scan to find.
template <class F>
void on_fresh_thread(F&& f) {
  bool attached = false;
  std::thread th([&] {
    attached = gc_thread_attach() == 0;
    if (attached) f();
    gc_thread_detach();
  });
  gc_blocking_begin();  // joining is a wait: the collector must not wait for this thread
  th.join();
  gc_blocking_end();
  REQUIRE(attached);
}

// One root slot per object, in malloc'd memory (which the collector does not scan itself).
// The slots hold the objects' addresses; the objects' addresses stay nowhere else.
struct Slots {
  explicit Slots(size_t n) : n(n), slot(new void*[n]()) {}
  size_t n;
  std::unique_ptr<void*[]> slot;
};

// Counts the objects of slot[i] with rooted[i] set that were freed (lost), and those with
// it clear that were not (kept); both should be 0. Out of line and followed by a scrub: the
// addresses it loads must not stay on the stack for the next collection.
[[gnu::noinline]] void count_wrong_unscrubbed(void* const* slot, const std::vector<bool>& rooted,
                                              size_t* lost, size_t* kept) {
  *lost = *kept = 0;
  for (size_t i = 0; i < rooted.size(); i++) {
    bool alive = gc_base(slot[i]) == slot[i];
    *lost += rooted[i] && !alive;
    *kept += !rooted[i] && alive;
  }
}

void count_wrong(void* const* slot, const std::vector<bool>& rooted, size_t* lost,
                 size_t* kept) {
  count_wrong_unscrubbed(slot, rooted, lost, kept);
  tricolor::test::scrub_stack_below();
}

}  // namespace

TEST_CASE("roots removed in mixed orders leave exactly the others registered", "[api][roots]") {
  ensure_heap();
  // 100k roots: the first quarter removed oldest first, the last quarter newest first, and
  // a random half of the middle in random order; every removal goes through the index.
  constexpr size_t kRoots = 100000;
  Slots s(kRoots);
  std::vector<bool> rooted(kRoots, true);
  on_fresh_thread([&] {
    for (size_t i = 0; i < kRoots; i++) {
      s.slot[i] = gc_alloc(16, nullptr);
      gc_add_root(&s.slot[i], sizeof(void*));
    }
  });
  for (size_t i = 0; i < kRoots / 4; i++) {
    gc_remove_root(&s.slot[i]);
    rooted[i] = false;
  }
  for (size_t i = kRoots; i-- > kRoots - kRoots / 4;) {
    gc_remove_root(&s.slot[i]);
    rooted[i] = false;
  }
  std::vector<size_t> middle;
  for (size_t i = kRoots / 4; i < kRoots - kRoots / 4; i++) middle.push_back(i);
  std::mt19937_64 rng(42);
  std::shuffle(middle.begin(), middle.end(), rng);
  middle.resize(middle.size() / 2);
  for (size_t i : middle) {
    gc_remove_root(&s.slot[i]);
    rooted[i] = false;
  }
  gc_collect();
  size_t lost = 0, kept = 0;
  count_wrong(s.slot.get(), rooted, &lost, &kept);
  CHECK(lost == 0);  // held by a remaining root, freed
  CHECK(kept == 0);  // root removed, still alive
  // A removed root is unknown now; a remaining one is still registered.
  CHECK_THAT(stderr_of([&] { gc_remove_root(&s.slot[0]); }),
             Catch::Contains("no root registered"));
  CHECK_THAT(stderr_of([&] { gc_remove_root(&s.slot[middle[0]]); }),
             Catch::Contains("no root registered"));
  size_t some_rooted = kRoots / 2;
  while (!rooted[some_rooted]) some_rooted++;
  CHECK(stderr_of([&] { gc_remove_root(&s.slot[some_rooted]); }).empty());
  rooted[some_rooted] = false;
  for (size_t i = 0; i < kRoots; i++)
    if (rooted[i]) gc_remove_root(&s.slot[i]);
  gc_collect();
  count_wrong(s.slot.get(), std::vector<bool>(kRoots, false), &lost, &kept);
  CHECK(kept == 0);
}

TEST_CASE("a start registered twice loses its newest registration first, among many roots",
          "[api][roots]") {
  ensure_heap();
  // Two words at `pair`: registered as 8 bytes, then as 16 (the newer). Removing it once
  // leaves the 8-byte range, so the second word's object goes and the first's stays.
  // Other roots are added and removed around them, so that the entries move in the root
  // set while the two registrations of `pair` are in it.
  auto pair = std::make_unique<void*[]>(2);
  Slots others(1000);
  on_fresh_thread([&] {
    pair[0] = gc_alloc(16, nullptr);
    pair[1] = gc_alloc(16, nullptr);
  });
  for (size_t i = 0; i < others.n / 2; i++) gc_add_root(&others.slot[i], sizeof(void*));
  gc_add_root(pair.get(), sizeof(void*));
  for (size_t i = others.n / 2; i < others.n; i++) gc_add_root(&others.slot[i], sizeof(void*));
  gc_add_root(pair.get(), 2 * sizeof(void*));
  for (size_t i = 0; i < others.n; i += 2) gc_remove_root(&others.slot[i]);  // move entries
  gc_remove_root(pair.get());                                               // the 16 bytes go
  for (size_t i = 1; i < others.n; i += 2) gc_remove_root(&others.slot[i]);
  gc_collect();
  size_t lost = 0, kept = 0;
  count_wrong(pair.get(), {true, false}, &lost, &kept);
  CHECK(lost == 0);
  CHECK(kept == 0);
  CHECK(stderr_of([&] { gc_remove_root(pair.get()); }).empty());  // the 8-byte one
  CHECK_THAT(stderr_of([&] { gc_remove_root(pair.get()); }),
             Catch::Contains("no root registered"));
  gc_collect();
  count_wrong(pair.get(), {false, false}, &lost, &kept);
  CHECK(kept == 0);
}
