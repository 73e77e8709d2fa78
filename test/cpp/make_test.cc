// make<T>, make_noscan<T>, make_array<T>: allocation and construction on the heap.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <vector>

#include "support.h"
#include "tricolor/gc.hpp"

using namespace tricolor::cpptest;
using tricolor::member;

namespace {

struct Point {  // an aggregate: make<Point>(1, 2) uses brace initialisation
  long x, y;
};

struct Counted {
  long a, b;
  Counted(long x, long y) : a(x + 1), b(y + 1) {}
};

struct Str {  // a pointer-free header with a variable-length tail
  size_t len;
  char* data() { return reinterpret_cast<char*>(this + 1); }
};

struct Word {
  uintptr_t w;
};

// Headers of other alignments with a variable-length tail, like Str.
struct Str4 {
  uint32_t len;
};
struct alignas(16) Str16 {
  uint64_t len;
};

// The number of the n objects at p[0..n) that are not aligned for T.
template <class T>
int misaligned(T* const* p, int n) {
  int bad = 0;
  for (int i = 0; i < n; i++) bad += reinterpret_cast<uintptr_t>(p[i]) % alignof(T) != 0;
  return bad;
}

}  // namespace

TEST_CASE("make constructs in zeroed heap memory with constructor or aggregate arguments",
          "[cpp][make]") {
  ensure_heap();
  ListNode* n = tricolor::make<ListNode>();
  REQUIRE(gc_base(n) == n);
  REQUIRE(gc_size(n) >= sizeof(ListNode));
  REQUIRE(n->next == nullptr);
  REQUIRE(n->value == 0);
  Point* p = tricolor::make<Point>(3L, 4L);
  REQUIRE(p->x == 3);
  REQUIRE(p->y == 4);
  Counted* c = tricolor::make<Counted>(1, 2);
  REQUIRE(c->a == 2);
  REQUIRE(c->b == 3);
  Point* z = tricolor::make<Point>();
  REQUIRE(z->x == 0);
  REQUIRE(z->y == 0);
}

TEST_CASE("make_noscan objects are never scanned, and additional_bytes sizes a tail",
          "[cpp][make]") {
  ensure_heap();
  auto keep = std::make_unique<tricolor::root<Word>>();
  uintptr_t target_h = 0;
  on_fresh_thread([&] {
    Word* w = tricolor::make_noscan<Word>();
    ListNode* target = tricolor::make<ListNode>();
    w->w = reinterpret_cast<uintptr_t>(target);  // an address in a noscan object retains nothing
    *keep = w;
    target_h = hide(target);
  });
  gc_collect();
  REQUIRE(!freed(hide(keep->get())));
  REQUIRE(freed(target_h));

  Str* s = tricolor::make_noscan<Str>(tricolor::additional_bytes{100}, Str{100});
  REQUIRE(s->len == 100);
  REQUIRE(gc_size(s) >= sizeof(Str) + 100);
  std::memset(s->data(), 'x', 100);
  REQUIRE(gc_base(s->data() + 99) == s);
}

TEST_CASE("make_noscan with additional_bytes aligns T whatever the tail's length",
          "[cpp][make]") {
  ensure_heap();
  // sizeof(T) plus a tail can be a size the tiny allocator aligns to less than T needs
  // (Str with 3 bytes is 11 B, aligned to 1). A 1-byte object before each one leaves the
  // allocator's cursor on an odd address.
  constexpr int kTails = 40;
  Str* s8[kTails];
  Str4* s4[kTails];
  Str16* s16[kTails];
  int short_objects = 0;
  for (int n = 0; n < kTails; n++) {
    gc_alloc_noscan(1);
    s8[n] = tricolor::make_noscan<Str>(tricolor::additional_bytes{size_t(n)}, Str{size_t(n)});
    gc_alloc_noscan(1);
    s4[n] = tricolor::make_noscan<Str4>(tricolor::additional_bytes{size_t(n)});
    gc_alloc_noscan(1);
    s16[n] = tricolor::make_noscan<Str16>(tricolor::additional_bytes{size_t(n)});
    short_objects += gc_size(s8[n]) < sizeof(Str) + n || gc_size(s4[n]) < sizeof(Str4) + n ||
                     gc_size(s16[n]) < sizeof(Str16) + n;
  }
  CHECK(misaligned(s8, kTails) == 0);
  CHECK(misaligned(s4, kTails) == 0);
  CHECK(misaligned(s16, kTails) == 0);
  CHECK(short_objects == 0);
  CHECK(s8[3]->len == 3);
}

TEST_CASE("make_array of members keeps every element's target alive", "[cpp][make][array]") {
  ensure_heap();
  auto keep = std::make_unique<tricolor::root<member<ListNode>>>();
  constexpr size_t kN = 5000;  // a large object: scanned in oblets
  std::vector<uintptr_t> hs;
  on_fresh_thread([&] {
    member<ListNode>* a = tricolor::make_array<member<ListNode>>(kN);
    for (size_t i = 0; i < kN; i++) REQUIRE(a[i] == nullptr);
    for (size_t i = 0; i < kN; i += 7) {
      ListNode* n = tricolor::make<ListNode>();
      n->value = long(i);
      a[i] = n;
      hs.push_back(hide(n));
    }
    *keep = a;
  });
  gc_collect();
  for (uintptr_t h : hs) REQUIRE(!freed(h));
  size_t wrong = 0;
  on_fresh_thread([&] {  // reads node addresses: on another thread, not in this frame
    member<ListNode>* a = keep->get();
    for (size_t i = 0; i < kN; i += 7) wrong += a[i]->value != long(i);
    for (size_t i = 0; i < kN; i++) a[i] = nullptr;
  });
  REQUIRE(wrong == 0);
  gc_collect();
  for (uintptr_t h : hs) REQUIRE(freed(h));
}

TEST_CASE("make_array of a type with gc_fields scans each element by the type's map",
          "[cpp][make][array]") {
  ensure_heap();
  auto keep = std::make_unique<tricolor::root<ListNode>>();
  std::vector<uintptr_t> traced, untraced;
  on_fresh_thread([&] {
    ListNode* a = tricolor::make_array<ListNode>(64);
    for (int i = 0; i < 64; i++) {
      ListNode* t = tricolor::make<ListNode>();
      ListNode* u = tricolor::make<ListNode>();
      a[i].next = t;
      a[i].value = static_cast<long>(reinterpret_cast<uintptr_t>(u));  // not a traced word
      traced.push_back(hide(t));
      untraced.push_back(hide(u));
    }
    *keep = a;
  });
  gc_collect();
  for (uintptr_t h : traced) REQUIRE(!freed(h));
  for (uintptr_t h : untraced) REQUIRE(freed(h));
}

TEST_CASE("make_array of arithmetic elements is noscan, and n = 0 is a valid object",
          "[cpp][make][array]") {
  ensure_heap();
  auto keep = std::make_unique<tricolor::root<uintptr_t>>();
  uintptr_t target_h = 0;
  on_fresh_thread([&] {
    uintptr_t* a = tricolor::make_array<uintptr_t>(16);
    ListNode* target = tricolor::make<ListNode>();
    for (int i = 0; i < 16; i++) {
      REQUIRE(a[i] == 0);
      a[i] = reinterpret_cast<uintptr_t>(target);
    }
    *keep = a;
    target_h = hide(target);
  });
  gc_collect();
  REQUIRE(freed(target_h));
  REQUIRE(gc_base(keep->get()) == keep->get());
  long* empty = tricolor::make_array<long>(0);
  REQUIRE(empty != nullptr);
  REQUIRE(gc_base(empty) == empty);
}

TEST_CASE("an impossible array size throws bad_alloc instead of returning null",
          "[cpp][make][array]") {
  ensure_heap();
  REQUIRE_THROWS_AS(tricolor::make_array<ListNode>(SIZE_MAX / 8), std::bad_alloc);
  REQUIRE_THROWS_AS(tricolor::make_array<char>(size_t{1} << 62), std::bad_alloc);
}

namespace {
struct Target {
  long id;
};
struct BaseNode {
  member<Target> a;
  using gc_fields = tricolor::fields<&BaseNode::a>;
};
// Adds a traced field but no gc_fields of its own: BaseNode's map does not know `b`.
struct DerivedNode : BaseNode {
  member<Target> b;
};
// Its own map: precise.
struct DerivedMapped : BaseNode {
  member<Target> b;
  using gc_fields = tricolor::fields<&DerivedMapped::a, &DerivedMapped::b>;
};
// Adds nothing: the base's map covers it.
struct DerivedSame : BaseNode {};
}  // namespace

// A gc_fields inherited from a base maps only the base's fields: the derived class's own
// member<U> fields were never traced, and what they held was freed while reachable (a client's
// 2000 of 2000 objects). Such a class is now scanned conservatively.
TEST_CASE("a class that inherits gc_fields and adds fields is scanned conservatively, not by "
          "the base's map", "[cpp][make]") {
  ensure_heap();
  STATIC_REQUIRE(tricolor::detail::precise_map<BaseNode>());
  STATIC_REQUIRE_FALSE(tricolor::detail::precise_map<DerivedNode>());
  STATIC_REQUIRE(tricolor::detail::precise_map<DerivedMapped>());
  STATIC_REQUIRE(tricolor::detail::precise_map<DerivedSame>());
  constexpr int kN = 200;
  static DerivedNode* holders[kN];
  gc_add_root(holders, sizeof holders);
  std::vector<uintptr_t> targets;
  on_fresh_thread([&] {
    for (int i = 0; i < kN; i++) {
      holders[i] = tricolor::make<DerivedNode>();
      Target* t = tricolor::make_noscan<Target>(Target{i});
      holders[i]->b = t;
      targets.push_back(hide(t));
    }
  });
  gc_collect();
  gc_collect();
  int lost = 0;
  for (int i = 0; i < kN; i++) {
    lost += freed(targets[i]);
    if (!freed(targets[i]) && holders[i]->b->id != i) lost++;
  }
  CHECK(lost == 0);
  gc_remove_root(holders);
}

// make_array<T>(0) for a 16-aligned T is 16-aligned: it was gc_alloc(0)'s 8-byte object,
// misaligned in about half the calls.
TEST_CASE("make_array of zero 16-aligned elements is 16-aligned", "[cpp][make][array]") {
  ensure_heap();
  int bad = 0;
  for (int i = 0; i < 1000; i++) {
    Str16* a = tricolor::make_array<Str16>(0);
    REQUIRE(a);
    bad += reinterpret_cast<uintptr_t>(a) % 16 != 0;
  }
  CHECK(bad == 0);
}
