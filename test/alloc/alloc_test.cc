// The allocator: classes, alignment, gc_base/gc_size, threads, tiny, bad input, accounting.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <set>
#include <thread>
#include <vector>

#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "alloc/sizeclasses.h"
#include "gc/collector.h"
#include "alloc/types.h"
#include "gc/mark.h"
#include "gc/thread.h"
#include "os/spin_mutex.h"
#include "support/heap.h"
#include "tricolor/gc.h"
#include "tricolor_config.h"

using namespace tricolor::internal;
using tricolor::test::ensure_heap;

TEST_CASE("gc_alloc returns zeroed memory of the requested size in the smallest class",
          "[alloc][malloc]") {
  ensure_heap();
  for (size_t size : {1, 7, 8, 9, 16, 17, 24, 33, 100, 500, 1024, 1025, 4096, 9000, 32768}) {
    auto* p = static_cast<unsigned char*>(gc_alloc(size, nullptr));
    REQUIRE(p != nullptr);
    for (size_t i = 0; i < size; i++) REQUIRE(p[i] == 0);
    memset(p, 0xab, size);
    size_t usable = gc_size(p);
    REQUIRE(usable >= size);
    REQUIRE(usable == kClassToSize[size_to_class(size)]);
  }
}

TEST_CASE("objects of 16 bytes and more are 16-aligned, all are 8-aligned", "[alloc][malloc]") {
  ensure_heap();
  for (size_t size = 1; size <= 4096; size += 7) {
    void* p = gc_alloc(size, nullptr);
    REQUIRE(reinterpret_cast<uintptr_t>(p) % 8 == 0);
    if (size >= 16) REQUIRE(reinterpret_cast<uintptr_t>(p) % 16 == 0);
  }
  void* big = gc_alloc(100 << 10, nullptr);
  REQUIRE(reinterpret_cast<uintptr_t>(big) % kPageSize == 0);
}

TEST_CASE("gc_base finds the object for every interior offset of every class", "[alloc][malloc]") {
  ensure_heap();
  for (int c = 1; c < kNumSizeClasses; c++) {
    size_t size = kClassToSize[c];
    for (int k = 0; k < 3; k++) {
      auto* p = static_cast<char*>(gc_alloc(size, nullptr));
      REQUIRE(p != nullptr);
      for (size_t off = 0; off < size; off++) {
        REQUIRE(gc_base(p + off) == p);
        REQUIRE(gc_size(p + off) == size);
      }
    }
  }
}

TEST_CASE("gc_base works for every page of a large object and not past it", "[alloc][malloc]") {
  ensure_heap();
  for (size_t size : {size_t(32769), size_t(100 << 10), size_t(1 << 20), size_t(5 << 20) + 3}) {
    auto* p = static_cast<char*>(gc_alloc_noscan(size));
    REQUIRE(p != nullptr);
    for (size_t off = 0; off < size; off += 4093) REQUIRE(gc_base(p + off) == p);
    REQUIRE(gc_base(p + size - 1) == p);
    REQUIRE(gc_size(p) >= size);
    REQUIRE(gc_size(p) % kPageSize == 0);
  }
}

TEST_CASE("gc_base of memory outside the heap is NULL", "[alloc][malloc]") {
  ensure_heap();
  int local = 0;
  static int global = 0;
  REQUIRE(gc_base(&local) == nullptr);
  REQUIRE(gc_base(&global) == nullptr);
  REQUIRE(gc_base(nullptr) == nullptr);
  REQUIRE(gc_base(reinterpret_cast<void*>(~uintptr_t{0})) == nullptr);
  REQUIRE(gc_size(&local) == 0);
  std::vector<char> v(100);
  REQUIRE(gc_base(v.data()) == nullptr);
}

TEST_CASE("no object lies on a chunk's first page, and heap_sys counts the pages after it",
          "[alloc][mheap]") {
  ensure_heap();
  // Small objects, 1 MiB objects past one chunk, and a large object taking a chunk of two
  // arenas: the heap grows by several chunks.
  std::vector<void*> keep;
  keep.reserve(1081);
  gc_add_root(keep.data(), keep.capacity() * sizeof(void*));  // not moved: reserved
  for (int i = 0; i < 1000; i++) keep.push_back(gc_alloc(48, nullptr));
  for (int i = 0; i < 80; i++) keep.push_back(gc_alloc_noscan(1 << 20));
  void* big = gc_alloc_noscan(100u << 20);
  REQUIRE(big != nullptr);
  keep.push_back(big);
  auto chunks = heap().chunks();
  REQUIRE(chunks.size() >= 3);
  bool saw_multi = false;
  uint64_t usable = 0;
  for (auto [base, bytes] : chunks) {
    INFO("chunk at " << std::hex << base << ", " << std::dec << (bytes >> 20) << " MiB");
    saw_multi |= bytes > kArenaBytes;
    usable += bytes - kChunkHeadBytes;
    for (uintptr_t off : {uintptr_t{0}, uintptr_t{1}, uintptr_t{8}, kChunkHeadBytes - 8}) {
      CHECK(gc_base(reinterpret_cast<void*>(base + off)) == nullptr);
      CHECK(mheap::span_of(base + off) == nullptr);
    }
  }
  CHECK(saw_multi);
  // Each object lies wholly after its chunk's first page.
  for (void* p : keep) {
    auto a = reinterpret_cast<uintptr_t>(p);
    bool placed = false;
    for (auto [base, bytes] : chunks)
      placed |= a >= base + kChunkHeadBytes && a + gc_size(p) <= base + bytes;
    CHECK(placed);
  }
  gc_stats s;
  gc_read_stats(&s);
  CHECK(s.heap_sys == usable);
  gc_remove_root(keep.data());
}

TEST_CASE("threads allocating at once never get overlapping objects", "[alloc][malloc]") {
  ensure_heap();
  gc_set_percent(-1);  // allocation only: nothing is freed while the objects are checked
  gc_collect();        // and no cycle requested earlier is still to run
  tricolor::test::StressCollectionsHeld no_stress;  // nor by a stress build's collections
  constexpr int kThreads = 4, kObjects = 20000;
  std::vector<std::vector<uint64_t*>> objs(kThreads);
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      gc_thread_attach();
      for (int i = 0; i < kObjects; i++) {
        size_t words = 1 + (i * 7 + t) % 40;
        auto* p = static_cast<uint64_t*>(i % 3 ? gc_alloc(words * 8, nullptr) : gc_alloc_noscan(words * 8));
        if (!p) { failures++; continue; }
        uint64_t pat = (uint64_t(t) << 48) | uint64_t(i) << 8 | words;
        for (size_t w = 0; w < words; w++) p[w] = pat;
        objs[t].push_back(p);
      }
      gc_blocking_begin();  // the pointers live in objs (off-heap): keep them off the scan
      gc_blocking_end();
      gc_thread_detach();
    });
  }
  gc_blocking_begin();
  for (auto& th : ts) th.join();
  gc_blocking_end();
  REQUIRE(failures == 0);
  for (int t = 0; t < kThreads; t++) {
    for (int i = 0; i < kObjects; i++) {
      size_t words = 1 + (i * 7 + t) % 40;
      uint64_t pat = (uint64_t(t) << 48) | uint64_t(i) << 8 | words;
      for (size_t w = 0; w < words; w++) REQUIRE(objs[t][i][w] == pat);
    }
  }
  gc_set_percent(100);
  // The heap is past the new trigger: the cycle that starts now, and its background sweep,
  // end here rather than beside the next test (whose verify_heap must not run beside a
  // sweeper: TSan saw them race once freed spans were cleared at the sweep, which made the
  // sweep longer).
  gc_collect();
}

TEST_CASE("tiny noscan objects share 16-byte blocks and keep their alignment", "[alloc][tiny]") {
  ensure_heap();
  // Fill a fresh block: 1 + 2 + 4 + 8 bytes fit in 16 with natural alignment.
  auto* a = static_cast<char*>(gc_alloc_noscan(8));
  auto* b = static_cast<char*>(gc_alloc_noscan(4));
  auto* c = static_cast<char*>(gc_alloc_noscan(2));
  auto* d = static_cast<char*>(gc_alloc_noscan(1));
  REQUIRE(reinterpret_cast<uintptr_t>(a) % 8 == 0);
  REQUIRE(reinterpret_cast<uintptr_t>(b) % 4 == 0);
  REQUIRE(reinterpret_cast<uintptr_t>(c) % 2 == 0);
  std::set<void*> bases{gc_base(a), gc_base(b), gc_base(c), gc_base(d)};
  REQUIRE(bases.size() <= 2);  // at most one block change among the four
  REQUIRE(gc_size(a) == 16);
  // Distinct, non-overlapping.
  std::set<char*> ptrs{a, b, c, d};
  REQUIRE(ptrs.size() == 4);
  memset(a, 1, 8);
  memset(b, 2, 4);
  memset(c, 3, 2);
  memset(d, 4, 1);
  REQUIRE(a[7] == 1);
  REQUIRE(b[3] == 2);
  REQUIRE(c[1] == 3);
  REQUIRE(d[0] == 4);
  // Many tiny objects use fewer blocks than objects.
  std::set<void*> blocks;
  for (int i = 0; i < 64; i++) blocks.insert(gc_base(gc_alloc_noscan(4)));
  REQUIRE(blocks.size() <= 17);
}

// Objects of every noscan size up to 16 B, in a random order, from gc_alloc_noscan and from
// gc_alloc with a pointer-free type: each lies inside one 16 B block (a heap object, its
// gc_base), aligned to its size's lowest set bit, zeroed, and apart from every other one;
// blocks are used in address order, so the space lost between objects stays small.
TEST_CASE("tiny objects of every size up to 16 B never cross a block and never overlap",
          "[alloc][tiny]") {
  ensure_heap();
  // The objects are held off the heap: a stress build's collections would free them.
  tricolor::test::StressCollectionsHeld no_stress;
  const gc_type* flat[17] = {};
  for (size_t size = 1; size <= 16; size++) flat[size] = gc_type_new("Flat", size, nullptr, 0);
  uint64_t rng = 12345;
  struct Obj {
    unsigned char* p;
    size_t size;
    unsigned char fill;
  };
  std::vector<Obj> objs;
  size_t bytes = 0;
  for (int i = 0; i < 20000; i++) {
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    size_t size = 1 + (rng >> 33) % 16;
    bool typed = (rng >> 40) % 4 == 0;
    auto* p = static_cast<unsigned char*>(typed ? gc_alloc(size, flat[size]) : gc_alloc_noscan(size));
    REQUIRE(p != nullptr);
    auto a = reinterpret_cast<uintptr_t>(p);
    INFO("object " << i << " of " << size << " B at offset " << a % 16);
    size_t align = std::min<size_t>(size & (~size + 1), 8);
    REQUIRE(a % align == 0);
    REQUIRE(a / 16 == (a + size - 1) / 16);  // inside one block
    REQUIRE(reinterpret_cast<uintptr_t>(gc_base(p)) == a - a % 16);
    REQUIRE(gc_size(p) == 16);
    if (size == 16) REQUIRE(a % 16 == 0);
    REQUIRE(std::all_of(p, p + size, [](unsigned char c) { return c == 0; }));
    auto fill = static_cast<unsigned char>(i % 251 + 1);
    memset(p, fill, size);
    objs.push_back({p, size, fill});
    bytes += size;
  }
  // No object overwrote another: each still holds its own fill.
  for (const Obj& o : objs)
    REQUIRE(std::all_of(o.p, o.p + o.size, [&](unsigned char c) { return c == o.fill; }));
  // The blocks the objects took, against the bytes asked for: random sizes of 1 to 16 B
  // fill about two thirds of each block (Go's rule loses as much).
  std::set<uintptr_t> blocks;
  for (const Obj& o : objs) blocks.insert(reinterpret_cast<uintptr_t>(o.p) / 16);
  CHECK(double(bytes) / double(blocks.size() * 16) > 0.55);
  REQUIRE(verify_heap(false) == 0);
}

// A collection ends with the tiny allocator's cursor inside a block that holds a reachable
// object: the block survives with its object, and what is allocated after the collection
// does not overlap it (mark termination gives the run back from the next block on).
TEST_CASE("a collection keeps the tiny allocator's current block and its objects",
          "[alloc][tiny]") {
  ensure_heap();
  for (int round = 0; round < 4; round++) {
    auto* volatile kept = static_cast<unsigned char*>(gc_alloc_noscan(4));
    REQUIRE(kept != nullptr);
    memset(kept, 0xc3, 4);
    auto block = reinterpret_cast<uintptr_t>(kept) & ~uintptr_t{15};
    gc_collect();
    REQUIRE(reinterpret_cast<uintptr_t>(gc_base(kept)) == block);  // still an allocated object
    std::vector<unsigned char*> after;
    for (int i = 0; i < 3000; i++) {
      auto* p = static_cast<unsigned char*>(gc_alloc_noscan(1 + i % 12));
      REQUIRE(p != nullptr);
      memset(p, 0x11, 1 + i % 12);
      REQUIRE((p + 1 + i % 12 <= kept || p >= kept + 4));
    }
    REQUIRE(std::all_of(kept, kept + 4, [](unsigned char c) { return c == 0xc3; }));
    REQUIRE(verify_heap(false) == 0);
  }
}

TEST_CASE("size 0 gives distinct minimum-size objects", "[alloc][misuse]") {
  ensure_heap();
  void* a = gc_alloc(0, nullptr);
  void* b = gc_alloc(0, nullptr);
  void* c = gc_alloc_noscan(0);
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  REQUIRE(c != nullptr);
  REQUIRE(a != b);
  REQUIRE(gc_size(a) == 8);
}

TEST_CASE("absurd sizes return NULL and the heap keeps working", "[alloc][misuse]") {
  ensure_heap();
  REQUIRE(gc_alloc(SIZE_MAX, nullptr) == nullptr);
  REQUIRE(gc_alloc(SIZE_MAX - 4096, nullptr) == nullptr);
  REQUIRE(gc_alloc_noscan(size_t{1} << 62) == nullptr);
  REQUIRE(gc_alloc(64, nullptr) != nullptr);
}

TEST_CASE("allocation from a thread that is not attached returns NULL", "[alloc][misuse]") {
  ensure_heap();
  void* r1 = reinterpret_cast<void*>(1);
  void* r2 = reinterpret_cast<void*>(1);
  std::thread th([&] {
    r1 = gc_alloc(32, nullptr);
    r2 = gc_alloc_noscan(4);
  });
  gc_blocking_begin();
  th.join();
  gc_blocking_end();
  REQUIRE(r1 == nullptr);
  REQUIRE(r2 == nullptr);
}

TEST_CASE("gc_type_new rejects bad pointer maps", "[alloc][types]") {
  size_t bad_off[] = {3};
  REQUIRE(gc_type_new("Odd", 16, bad_off, 1) == nullptr);
  size_t past[] = {16};
  REQUIRE(gc_type_new("Past", 16, past, 1) == nullptr);
  REQUIRE(gc_type_new("Zero", 0, nullptr, 0) == nullptr);
  REQUIRE(gc_type_new("NullOffsets", 16, nullptr, 2) == nullptr);
  size_t ok[] = {0, 8};
  const gc_type* t = gc_type_new("Pair", 16, ok, 2);
  REQUIRE(t != nullptr);
  REQUIRE(std::string(gc_type_name(t)) == "Pair");
}

TEST_CASE("span accounting adds up after allocation and collection", "[alloc][verify]") {
  ensure_heap();
  for (int i = 0; i < 10000; i++) gc_alloc(16 + i % 300, nullptr);
  gc_collect();
  REQUIRE(verify_heap(false) == 0);
  REQUIRE(verify_failures() == 0);
  gc_stats s;
  gc_read_stats(&s);
  REQUIRE(s.heap_inuse >= s.heap_alloc);
  REQUIRE(s.heap_sys >= s.heap_inuse);
  REQUIRE(s.mallocs >= s.frees);
}

// INV-SPAN-4 on a span of its own (not in the heap: only its bitmaps are used). Objects of
// one layout leave the bitmap alone; the first object of another layout fills it from the
// uniform bits, and from then on each slot reads its own bits.
TEST_CASE("a span keeps one pointer layout without its bitmap and fills it for a second",
          "[alloc][heapbits]") {
  mspan s;
  span_init(&s, uintptr_t{1} << 30, 1, make_span_class(size_to_class(48), false), 0);
  REQUIRE(s.heap_bits != nullptr);
  REQUIRE(s.obj_word_mask == 0x3f);
  REQUIRE(s.uniform_bits.load() == kHeapBitsUnset);
  auto bitmap_is_clear = [&] {
    for (uint32_t w = 0; w < kPageSize / 8 / 64; w++)
      if (s.heap_bits[w] != 0) return false;
    return true;
  };
  const uint64_t a = 0x1, b = 0x20;  // a pointer in word 0; a pointer in word 5
  for (uint32_t i = 0; i < 10; i++) s.set_heap_bits(i, a | ~uint64_t{0} << 6);  // tiled
  CHECK(s.uniform_bits.load() == a);
  CHECK(bitmap_is_clear());
  for (uint32_t i = 0; i < 10; i++) REQUIRE(s.read_heap_bits(i) == a);

  s.set_heap_bits(10, b);
  CHECK(s.uniform_bits.load() == kHeapBitsMixed);
  CHECK_FALSE(bitmap_is_clear());
  for (uint32_t i = 0; i < 10; i++) REQUIRE(s.read_heap_bits(i) == a);
  REQUIRE(s.read_heap_bits(10) == b);
  s.set_heap_bits(11, a);
  s.set_heap_bits(3, b);  // a slot reused with the other layout
  CHECK(s.read_heap_bits(11) == a);
  CHECK(s.read_heap_bits(3) == b);
  CHECK(s.read_heap_bits(2) == a);
  CHECK(s.read_heap_bits(4) == a);
  span_release_bits(&s);

  // 64-word objects: every pattern is possible, so such a span starts with the bitmap.
  mspan big;
  span_init(&big, uintptr_t{1} << 30, 1, make_span_class(size_to_class(512), false), 0);
  REQUIRE(big.obj_word_mask == ~uint64_t{0});
  CHECK(big.uniform_bits.load() == kHeapBitsMixed);
  big.set_heap_bits(0, ~uint64_t{0});
  big.set_heap_bits(1, kHeapBitsUnset);
  CHECK(big.read_heap_bits(0) == ~uint64_t{0});
  CHECK(big.read_heap_bits(1) == kHeapBitsUnset);
  span_release_bits(&big);
}

// write_heap_bits_run, which writes a run of slots' bits a bitmap word at a time, leaves
// the bitmap as write_heap_bits slot by slot does, for every class with a bitmap, from any
// slot, over bits the span had before.
TEST_CASE("a run of slots' pointer bits written at once equals them written one by one",
          "[alloc][heapbits]") {
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&seed] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  int checked = 0;
  for (uint32_t cls = 1; cls < kNumSizeClasses; cls++) {
    if (kClassToSize[cls] > kMaxHeapBitsElem) break;
    mspan a, b;
    SpanClass sc = make_span_class(cls, false);
    span_init(&a, uintptr_t{1} << 30, kClassToNPages[cls], sc, 0);
    span_init(&b, uintptr_t{1} << 31, kClassToNPages[cls], sc, 0);
    REQUIRE(a.heap_bits != nullptr);
    size_t words = size_t(kClassToNPages[cls]) * kPageSize / 8 / 64;
    for (int trial = 0; trial < 40; trial++) {
      for (size_t w = 0; w < words; w++) a.heap_bits[w] = b.heap_bits[w] = next();
      uint32_t idx = uint32_t(next() % a.nelems);
      uint32_t count = uint32_t(next() % (a.nelems - idx + 1));
      uint64_t bits = next() & a.obj_word_mask;
      for (uint32_t i = 0; i < count; i++) a.write_heap_bits(idx + i, bits);
      b.write_heap_bits_run(idx, count, bits);
      INFO("class " << cls << " (" << kClassToSize[cls] << " B), slots " << idx << " + " << count);
      for (size_t w = 0; w < words; w++) REQUIRE(a.heap_bits[w] == b.heap_bits[w]);
      checked++;
    }
    span_release_bits(&a);
    span_release_bits(&b);
  }
  CHECK(checked > 40 * 20);
}

// Through gc_alloc: a run (mcache::Run) hands out objects without writing their pointer
// bits only while the span's uniform bits are the type's. A 64-word span always uses its
// bitmap (its state value kHeapBitsMixed is also the all-pointer pattern), and a span of
// larger objects a type per object: there the first object of a type in a run records the
// type for the run's other slots, and a change of type records the new one.
TEST_CASE("every object of a run reads its own pointer bits, in uniform and bitmap spans",
          "[alloc][types]") {
  ensure_heap();
  // The objects are held off the heap: a stress build's collections would free them.
  tricolor::test::StressCollectionsHeld no_stress;
  int old_percent = gc_set_percent(-1);  // nor the pacer's
  size_t word0 = 0, word1 = 8;
  // A pointer in word 0 of every two (the type tiles an object larger than it), and one in
  // word 1 of every three.
  const gc_type* one = gc_type_new("EveryOtherWord", 16, &word0, 1);
  const gc_type* two = gc_type_new("SecondOfThree", 24, &word1, 1);
  REQUIRE(one != nullptr);
  REQUIRE(two != nullptr);
  // Sequences of types: `in_a_row` of each of two in turn (in a bitmap span one of them is
  // the run's, whose bits are written ahead, and the other writes its own), three types in
  // turn, and an irregular mix. Long enough to use up several runs and, for small objects,
  // the chunks of a run that a type's bits are written ahead for (64 slots).
  uint64_t seed = 12345;
  struct Pattern {
    const char* name;
    std::function<const gc_type*(int)> type_of;
  };
  const Pattern patterns[] = {
      {"1 in a row", [&](int i) { return i % 2 == 0 ? nullptr : one; }},
      {"2 in a row", [&](int i) { return i / 2 % 2 == 0 ? nullptr : one; }},
      {"5 in a row", [&](int i) { return i / 5 % 2 == 0 ? nullptr : one; }},
      {"three in turn", [&](int i) { return i % 3 == 0 ? nullptr : i % 3 == 1 ? one : two; }},
      {"long and short", [&](int i) { return i % 100 < 90 ? one : two; }},
      {"irregular", [&](int) {
         seed = seed * 6364136223846793005ull + 1442695040888963407ull;
         uint64_t r = seed >> 61;
         return r < 4 ? one : r < 6 ? two : static_cast<const gc_type*>(nullptr);
       }},
  };
  for (size_t size : {size_t{32}, size_t{48}, size_t{256}, size_t{512}, size_t{1024}, size_t{2048}}) {
    for (const Pattern& pat : patterns) {
      std::vector<std::pair<void*, const gc_type*>> objs;
      for (int i = 0; i < 600; i++) {
        const gc_type* t = pat.type_of(i);
        void* p = gc_alloc(size, t);
        REQUIRE(p != nullptr);
        objs.emplace_back(p, t);
      }
      for (auto& [p, t] : objs) {
        INFO("size " << size << ", " << pat.name);
        REQUIRE(tricolor::test::pointer_map_mismatch(p, t) == "");
      }
    }
  }
  gc_set_percent(old_percent);
}

// Memory fresh from the OS reads as zero without being written, but a page's first read
// maps the shared zero page and its first write after that is a second fault (a copy,
// and a TLB shootdown on the program's other CPUs). take_run writes each fresh page of a
// run before handing it out, so objects read before they are written (as the write
// barrier reads a slot's old value) fault no more than objects only written. Counted with
// getrusage on this thread, with automatic collection off (no page is reused); not in
// sanitizer builds, whose shadow memory faults too.
TEST_CASE("objects on fresh pages fault as often when read before written as when only written",
          "[alloc][os]") {
  if (tricolor::test::kSanitizerScale > 1) return;
  ensure_heap();
  gc_collect();
  int percent = gc_set_percent(-1);
  constexpr size_t kSize = 256;
  constexpr size_t kCount = (32 << 20) / kSize;  // 32 MiB a phase, from new arenas mostly
  // First use up the pages the heap holds free (written before, or fresh), so that both
  // phases below take pages of new arenas.
  gc_stats st;
  gc_read_stats(&st);
  std::vector<void*> keep((st.heap_sys - st.heap_inuse) / kSize + 4096 + 2 * kCount);
  size_t warm = keep.size() - 2 * kCount;
  for (size_t i = 0; i < warm; i++) REQUIRE((keep[i] = gc_alloc_noscan(kSize)) != nullptr);
  auto phase = [&](size_t first, bool read_first) {
    rusage r0, r1;
    getrusage(RUSAGE_THREAD, &r0);
    for (size_t i = first; i < first + kCount; i++) {
      auto* p = static_cast<volatile uint64_t*>(gc_alloc_noscan(kSize));
      REQUIRE(p != nullptr);
      uint64_t v = read_first ? p[0] : 0;
      p[0] = v + 1;
      keep[i] = const_cast<uint64_t*>(p);
    }
    getrusage(RUSAGE_THREAD, &r1);
    return size_t(r1.ru_minflt - r0.ru_minflt);
  };
  size_t written = phase(warm, false);
  size_t read_then_written = phase(warm + kCount, true);
  gc_set_percent(percent);
  INFO(written << " faults when written, " << read_then_written << " when read first");
  CHECK(written > 0);
  CHECK(read_then_written < written * 3 / 2);  // twice as many without the write
  gc_collect();
}

// gc_alloc's fast path looks up the scan class's run by the type alone, without reading
// whether the type is noscan: objects of a pointer-free type, allocated in turn with
// scan objects of the same size, must still land in noscan spans, and the scan objects
// in scan spans with their own pointer bits.
TEST_CASE("gc_alloc files a pointer-free type's objects in noscan spans, next to scan objects",
          "[alloc][types]") {
  ensure_heap();
  size_t word0 = 0;
  const gc_type* flat = gc_type_new("Flat", 32, nullptr, 0);
  const gc_type* linked = gc_type_new("Linked", 32, &word0, 1);
  REQUIRE(flat != nullptr);
  REQUIRE(linked != nullptr);
  for (int i = 0; i < 600; i++) {  // several runs and spans of the class
    const gc_type* t = i % 3 == 0 ? linked : i % 3 == 1 ? flat : nullptr;
    void* p = gc_alloc(32, t);
    REQUIRE(p != nullptr);
    ObjRef r;
    REQUIRE(find_object(reinterpret_cast<uintptr_t>(p), &r));
    INFO("object " << i);
    REQUIRE(r.span->noscan() == (t == flat));
    if (t == linked) REQUIRE(r.span->read_heap_bits(r.idx) == (linked->tile64 & 0xf));
    if (t == nullptr) REQUIRE(r.span->read_heap_bits(r.idx) == 0xf);
  }
}

// The statistics count the objects handed out, not the slots a run takes ahead of them:
// mark termination gives a run's unused slots back to their span.
TEST_CASE("the allocation counters count objects handed out and runs give their rest back",
          "[alloc][verify]") {
  ensure_heap();
  gc_collect();
  gc_stats a, b;
  gc_read_stats(&a);
  for (int i = 0; i < 10; i++) REQUIRE(gc_alloc(48, nullptr) != nullptr);
  for (int i = 0; i < 7; i++) REQUIRE(gc_alloc_noscan(200) != nullptr);
  gc_collect();
  gc_read_stats(&b);
  CHECK(b.mallocs - a.mallocs == 17);
  REQUIRE(verify_heap(false) == 0);
}

// A thread adds what it allocates to the shared counters in steps (mcache::pending), not
// at every refill: before any collection the figures lag by at most a step and the span
// being allocated from; a thread that detaches adds all of it.
TEST_CASE("the shared counters lag a thread's allocations by a bounded step, and none after "
          "it detaches",
          "[alloc][stats]") {
  ensure_heap();
  tricolor::test::StressCollectionsHeld no_stress;
  int old_percent = gc_set_percent(-1);
  gc_collect();
  gc_stats a, b, c;
  gc_read_stats(&a);
  constexpr size_t kObj = 4096, kCount = 1000;  // 4 MB in 8 KiB spans
  tricolor::test::on_fresh_thread([&] {
    for (size_t i = 0; i < kCount; i++) REQUIRE(gc_alloc(kObj, nullptr) != nullptr);
    gc_read_stats(&b);  // attached still: this thread's last step is pending
  });
  gc_read_stats(&c);  // after the thread's detach
  uint64_t step = 64 << 10;  // mcache::kCounterFlushBytes
  CHECK(b.total_alloc - a.total_alloc <= kCount * kObj);
  CHECK(b.total_alloc - a.total_alloc + step + 8192 >= kCount * kObj);
  CHECK(b.mallocs - a.mallocs + (step + 8192) / kObj >= kCount);
  CHECK(c.total_alloc - a.total_alloc == kCount * kObj);
  CHECK(c.mallocs - a.mallocs == kCount);
  // The 4 MB are garbage: collected here, so that the GOGC set back does not start a cycle
  // whose background sweep the next test's verifier would run beside.
  gc_collect();
  gc_set_percent(old_percent);
}

// no_inline.cc: the same calls from a translation unit that defines TRICOLOR_NO_INLINE_ALLOC.
void* alloc_without_inline(size_t size, const gc_type* type);
void* alloc_noscan_without_inline(size_t size);

template <class A, class B>
struct PairSize {
  static constexpr size_t value = sizeof(A) + sizeof(B);
};

// gc.h's inline fast paths bump the thread's own runs and tiny block (tricolor_tls_cache),
// which the library's functions bump too: allocations that alternate between them come
// from one run, slot after slot, and one tiny block, offset after offset.
TEST_CASE("gc.h's inline fast paths and the library's functions share the thread's runs",
          "[alloc][inline]") {
  ensure_heap();
  // The objects are held off the heap: a stress build's collections would free them.
  tricolor::test::StressCollectionsHeld no_stress;
#if TRICOLOR_STRESS
  REQUIRE(tricolor_tls_cache == nullptr);  // every allocation calls the library
#else
  REQUIRE(tricolor_tls_cache == static_cast<tricolor_cache*>(&current_thread()->cache));
#endif
#if defined(__x86_64__) && !defined(TRICOLOR_TSAN_CALLER_)
  REQUIRE(TRICOLOR_INLINE_ALLOC == 1);
#elif defined(TRICOLOR_TSAN_CALLER_)
  // Code built with ThreadSanitizer calls the library (gc.h).
#ifdef TRICOLOR_INLINE_ALLOC
#error "gc.h inlines the allocation fast path into ThreadSanitizer code"
#endif
#endif
  // The macros take an argument with a comma in a template argument list whole.
  void* two = gc_alloc(PairSize<long, double>::value, nullptr);
  void* two_noscan = gc_alloc_noscan(PairSize<long, double>::value);
  REQUIRE(gc_size(two) == 16);
  REQUIRE(gc_size(two_noscan) == 16);
  size_t word0 = 0;
  const gc_type* pair = gc_type_new("Pair48", 48, &word0, 1);
  for (int round = 0; round < 3; round++) {
    std::set<void*> seen;
    int adjacent = 0, tiny_adjacent = 0;
    char* prev = nullptr;
    char* prev_tiny = nullptr;
    for (int i = 0; i < 256; i++) {
      // Scan objects of one type (a uniform run), noscan objects, tiny objects.
      bool inline_path = i % 2 == 0;
      auto* p = static_cast<char*>(inline_path ? gc_alloc(48, pair) : alloc_without_inline(48, pair));
      auto* q = static_cast<char*>(inline_path ? gc_alloc_noscan(100) : alloc_noscan_without_inline(100));
      auto* t = static_cast<char*>(inline_path ? gc_alloc_noscan(4) : alloc_noscan_without_inline(4));
      REQUIRE(p != nullptr);
      REQUIRE(q != nullptr);
      REQUIRE(t != nullptr);
      for (char* o : {p, q}) {
        REQUIRE(gc_base(o) == o);
        REQUIRE(seen.insert(o).second);
      }
      REQUIRE(gc_size(p) == 48);
      REQUIRE(gc_size(q) == 112);
      REQUIRE(gc_size(t) == 16);
      REQUIRE(std::all_of(p, p + 48, [](char c) { return c == 0; }));
      REQUIRE(std::all_of(q, q + 112, [](char c) { return c == 0; }));
      REQUIRE(std::all_of(t, t + 4, [](char c) { return c == 0; }));
      memset(p + 8, 0x5a, 40);  // the pointer word stays zero
      memset(q, 0x5b, 112);
      memset(t, 0x5c, 4);
      if (prev && p == prev + 48) adjacent++;
      if (prev_tiny && t == prev_tiny + 4) tiny_adjacent++;
      prev = p;
      prev_tiny = t;
    }
    // A run holds 8192 / 48 = 170 slots: a run change or two among 256 objects. The tiny
    // allocator's blocks lie end to end in its run (512 blocks of four 4 B objects): one
    // run change at most.
    CHECK(adjacent >= 240);
    CHECK(tiny_adjacent >= 254);
    // Other threads' runs and this thread's are disjoint: the heap adds up.
    REQUIRE(verify_heap(false) == 0);
    gc_collect();
  }
}

// A page cache's refill takes the released and dirty bits of its window's pages with the
// pages (a word of each bitmap at a time): after gc_free_os_memory every free page is
// released, so the window's free pages are all marked released, none dirty, heap_released
// drops by exactly the pages taken, and the span cut from them needs no clearing.
TEST_CASE("a page cache takes its window's released pages out of heap_released",
          "[alloc][pagecache]") {
  ensure_heap();
  for (int i = 0; i < 2048; i++) REQUIRE(gc_alloc_noscan(4096));  // free pages, once collected
  gc_free_os_memory();
  PageCache pc;
  const SpanClass sc = make_span_class(size_to_class(256), true);
  const uint64_t before = heap().counters.heap_released.load();
  REQUIRE(before > 0);
  bool needzero = true;
  mspan* s = heap().alloc_span(1, sc, &needzero, &pc);
  REQUIRE(s);
  const uint64_t after = heap().counters.heap_released.load();
  const uint64_t taken = uint64_t{1} << ((s->start - pc.base) / kPageSize);
  INFO("window free " << std::hex << pc.free << " released " << pc.scav << " dirty " << pc.dirty);
  CHECK(pc.scav == pc.free);  // every free page of the window was released
  CHECK(pc.dirty == 0);
  CHECK_FALSE(needzero);  // released pages read as zero
  CHECK(before - after == uint64_t(__builtin_popcountll(pc.free | taken)) * kPageSize);
  // The flush gives the pages back with their bits: released again (heap_released back
  // where it was), and a second cache takes them out again as the first did.
  heap().free_span(s, &pc, /*zeroed=*/true);
  uint64_t window = pc.free;
  heap().flush_page_cache(&pc);
  CHECK(heap().counters.heap_released.load() ==
        after + uint64_t(__builtin_popcountll(window & ~taken)) * kPageSize);
  PageCache pc2;
  const uint64_t before2 = heap().counters.heap_released.load();
  mspan* s2 = heap().alloc_span(1, sc, &needzero, &pc2);
  REQUIRE(s2);
  // Its window's free pages all released again, and taken out of heap_released again (the
  // span's own page too if it was one of them).
  CHECK(pc2.scav != 0);
  CHECK(pc2.scav == pc2.free);
  const uint64_t dec = before2 - heap().counters.heap_released.load();
  CHECK(dec >= uint64_t(__builtin_popcountll(pc2.scav)) * kPageSize);
  CHECK(dec <= uint64_t(__builtin_popcountll(pc2.scav) + 1) * kPageSize);
  heap().free_span(s2, &pc2, /*zeroed=*/true);
  heap().flush_page_cache(&pc2);
  REQUIRE(verify_heap(false) == 0);
}

// A page cache's flush gives its free pages back to the heap's free runs with their bits:
// a page that held objects stays dirty there, so the next span on it clears it.
TEST_CASE("a page cache's flush keeps its dirty pages dirty in the heap", "[alloc][pagecache]") {
  ensure_heap();
  PageCache pc;
  const SpanClass sc = make_span_class(size_to_class(256), true);
  bool needzero = false;
  mspan* s = heap().alloc_span(1, sc, &needzero, &pc);
  REQUIRE(s);
  const uintptr_t a = s->start;
  heap().free_span(s, &pc);  // held objects: dirty, back in the cache
  REQUIRE((pc.dirty >> ((a - pc.base) / kPageSize) & 1) == 1);
  heap().flush_page_cache(&pc);
  REQUIRE(heap().free_run_pages_at(a) != 0);
  CHECK(heap().free_page_dirty(a));
  REQUIRE(verify_heap(false) == 0);
}

// mheap::free_span with the freeing thread's page cache: a span inside the cache's window
// goes back to the cache (not to the heap's free runs), dirty unless the caller cleared it,
// and the cache's next span of that size takes the same pages.
TEST_CASE("a span freed inside its thread's page-cache window goes back to that cache",
          "[alloc][pagecache]") {
  ensure_heap();
  PageCache pc;
  const SpanClass sc = make_span_class(size_to_class(256), true);
  bool needzero = true;
  mspan* s = heap().alloc_span(1, sc, &needzero, &pc);
  REQUIRE(s);
  const uintptr_t a = s->start;
  REQUIRE(pc.base != 0);
  REQUIRE((a >= pc.base && a < pc.base + PageCache::kPages * kPageSize));
  const uint64_t bit = uint64_t{1} << ((a - pc.base) / kPageSize);
  CHECK((pc.free & bit) == 0);
  const int structs = pc.nspans;
  heap().free_span(s, &pc);
  CHECK(heap().span_of(a) == nullptr);
  CHECK((pc.free & bit) != 0);
  CHECK((pc.dirty & bit) != 0);  // it held objects
  CHECK(pc.nspans == std::min(structs + 1, PageCache::kSpans));
  CHECK(heap().free_run_pages_at(a) == 0);  // not in the heap's free runs
  mspan* t = heap().alloc_span(1, sc, &needzero, &pc);
  REQUIRE(t);
  CHECK(t->start == a);  // lowest free page first: the one just freed
  CHECK(needzero);
  heap().free_span(t, &pc, /*zeroed=*/true);
  CHECK((pc.dirty & bit) == 0);
  mspan* u = heap().alloc_span(1, sc, &needzero, &pc);
  REQUIRE(u);
  CHECK(u->start == a);
  CHECK_FALSE(needzero);  // cleared by whoever freed it
  // Without a cache (or outside its window) the span goes to the heap's free runs.
  heap().free_span(u);
  CHECK((pc.free & bit) == 0);
  CHECK(heap().free_run_pages_at(a) != 0);
  heap().flush_page_cache(&pc);
  CHECK(pc.free == 0);
  CHECK(pc.nspans == 0);
}

// A page cache places a span of n pages at the lowest run of n free pages of its window
// (mheap::take_span; the run's starts are found in log2(n) steps). Every n from 1 to
// kMaxSpanPages against windows with free pages knocked out in patterns: the span must start
// where a page-by-page search finds the first fit.
TEST_CASE("a page cache places a span at the lowest run of free pages that fits",
          "[alloc][pagecache]") {
  ensure_heap();
  PageCache pc;
  const SpanClass sc = make_span_class(0, true);
  bool needzero = false;
  mspan* first = heap().alloc_span(1, sc, &needzero, &pc);  // fills the window
  REQUIRE(first);
  heap().free_span(first, &pc, /*zeroed=*/false);
  const uint64_t window = pc.free;
  REQUIRE(__builtin_popcountll(window) >= int(PageCache::kMaxSpanPages) + 8);
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  int placed = 0;
  for (size_t n = 1; n <= PageCache::kMaxSpanPages; n++) {
    for (int trial = 0; trial < 200; trial++) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      // Knock out about one page in (trial % 8 + 2), keeping the window's own holes.
      uint64_t knock = rng & (rng >> 3) & (rng >> (trial % 8 + 2));
      uint64_t avail = window & ~knock;
      int want = -1;
      for (unsigned i = 0; i + n <= 64 && want < 0; i++) {
        uint64_t m = (n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1) << i;
        if ((avail & m) == m) want = int(i);
      }
      if (want < 0) continue;  // no fit: the cache would refill, not what is tested here
      pc.free = avail;
      mspan* s = heap().alloc_span(n, sc, &needzero, &pc);
      REQUIRE(s);
      INFO("n " << n << " window " << std::hex << avail);
      CHECK(s->start == pc.base + size_t(want) * kPageSize);
      heap().free_span(s, &pc, /*zeroed=*/false);
      pc.free = window;  // the knocked-out pages were never taken
      placed++;
    }
  }
  CHECK(placed > 1000);
  heap().flush_page_cache(&pc);
  REQUIRE(verify_heap(false) == 0);
}

// mheap::scavenge_some, the background scavenger's release: the highest free pages not yet
// released go first, in batches taken out of the free runs and put back released, joined
// to their neighbours again; heap_released grows by exactly what it returns.
TEST_CASE("the scavenger releases free pages from the top down and puts them back joined",
          "[alloc][scavenge]") {
  ensure_heap();
  gc_free_os_memory();  // every free page released: the span below is the only one not
  const SpanClass sc = make_span_class(0, true);
  bool needzero = false;
  mspan* s = heap().alloc_span(512, sc, &needzero);
  REQUIRE(s);
  const uintptr_t a = s->start;
  memset(reinterpret_cast<void*>(a), 7, 512 * kPageSize);  // resident, and dirty once freed
  heap().free_span(s);
  REQUIRE_FALSE(heap().free_page_released(a));
  REQUIRE_FALSE(heap().free_page_released(a + 511 * kPageSize));
  const uint64_t r0 = heap().counters.heap_released.load();
  size_t got = heap().scavenge_some(100 * kPageSize, monotonic_ns(), 0);
  CHECK(got == 100 * kPageSize);
  CHECK(heap().counters.heap_released.load() - r0 == got);
  size_t wrong = 0;
  for (size_t i = 0; i < 512; i++)
    wrong += heap().free_page_released(a + i * kPageSize) != (i >= 412);
  CHECK(wrong == 0);
  CHECK_FALSE(heap().free_page_dirty(a + 500 * kPageSize));  // released pages read as zero
  CHECK(heap().free_page_dirty(a));
  CHECK(heap().free_run_pages_at(a) >= 512);  // one run again
  CHECK(heap().check_free_runs() == 0);
  got = heap().scavenge_some(SIZE_MAX, monotonic_ns(), 0);
  CHECK(got == 412 * kPageSize);
  for (size_t i = 0; i < 512; i++) wrong += !heap().free_page_released(a + i * kPageSize);
  CHECK(wrong == 0);
  CHECK(heap().scavenge_some(SIZE_MAX, monotonic_ns(), 0) == 0);  // nothing left
  CHECK(heap().check_free_runs() == 0);
  // The pages read as zero when they are used again.
  mspan* t = heap().alloc_span(512, sc, &needzero);
  REQUIRE(t);
  if (t->start == a) CHECK_FALSE(needzero);
  heap().free_span(t, nullptr, /*zeroed=*/true);
  REQUIRE(verify_heap(false) == 0);
}

// SpinMutex (the heap's and the mcentrals' lock, os/spin_mutex.h): four threads on two CPUs
// take it in turn, each holding it now and then for longer than a waiter spins, so that
// waiters also sleep and are woken. The counter it guards is a plain integer: a lost update
// shows in the total, and a missing acquire or release is a data race under TSan.
TEST_CASE("SpinMutex excludes, and wakes the threads that sleep on it", "[alloc][lock]") {
  SpinMutex mu;
  uint64_t counter = 0;
  int inside = 0;  // threads in the critical section: must be 1 there
  std::atomic<int> overlaps{0};
  constexpr int kThreads = 4, kRounds = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kRounds; i++) {
        std::lock_guard<SpinMutex> g(mu);
        if (++inside != 1) overlaps++;
        counter++;
        if ((i + t) % 2000 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
        --inside;
      }
    });
  for (auto& th : ts) th.join();
  CHECK(overlaps.load() == 0);
  REQUIRE(counter == uint64_t(kThreads) * kRounds);
  REQUIRE(mu.try_lock());  // left free
  CHECK_FALSE(mu.try_lock());
  mu.unlock();
}
