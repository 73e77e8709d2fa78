// root<T>: registered roots that keep objects alive from outside the heap.
#include <catch2/catch.hpp>

#include <memory>
#include <type_traits>
#include <vector>

#include "support.h"
#include "tricolor/gc.hpp"

using namespace tricolor::cpptest;
using tricolor::member;

namespace {

static_assert(!std::is_copy_constructible_v<tricolor::root<ListNode>>);
static_assert(!std::is_copy_assignable_v<tricolor::root<ListNode>>);
static_assert(std::is_nothrow_move_assignable_v<tricolor::root<ListNode>>);
static_assert(std::is_move_constructible_v<tricolor::root<ListNode>>);

static_assert(std::is_move_constructible_v<tricolor::root<const ListNode>>);

// A root in a global: registered before main, like the globals of a runtime.
tricolor::root<ListNode> g_global;

}  // namespace

TEST_CASE("a root keeps its object alive until it is destroyed", "[cpp][root]") {
  ensure_heap();
  // The roots live in malloc'd memory, which the collector does not scan by itself.
  auto r = std::make_unique<tricolor::root<ListNode>>();
  uintptr_t h = 0, child_h = 0;
  on_fresh_thread([&] {
    ListNode* n = tricolor::make<ListNode>();
    n->value = 7;
    n->next = tricolor::make<ListNode>();
    *r = n;
    h = hide(n);
    child_h = hide(n->next.get());
  });
  gc_collect();
  REQUIRE(!freed(h));
  REQUIRE(!freed(child_h));
  long v1 = 0, v2 = 0;
  bool same = false;
  on_fresh_thread([&] {  // reads the address on another thread, not in this frame
    v1 = (*r)->value;
    v2 = (**r).value;
    ListNode* raw = *r;
    same = raw == unhide<ListNode>(h) && *r != nullptr;
  });
  REQUIRE(v1 == 7);
  REQUIRE(v2 == 7);
  REQUIRE(same);
  r.reset();
  gc_collect();
  REQUIRE(freed(h));
  REQUIRE(freed(child_h));
}

TEST_CASE("a moved root keeps the object and the moved-from root holds null", "[cpp][root]") {
  ensure_heap();
  // Every step that loads the address runs on a fresh thread, so this frame holds no copy.
  std::unique_ptr<tricolor::root<ListNode>> a, b, c;
  uintptr_t h = 0;
  bool a_null = false, same = false, b_null = false;
  on_fresh_thread([&] {
    a = std::make_unique<tricolor::root<ListNode>>(tricolor::make<ListNode>());
    h = hide(a->get());
  });
  on_fresh_thread([&] {
    b = std::make_unique<tricolor::root<ListNode>>(std::move(*a));
    a_null = *a == nullptr;
    same = b->get() == unhide<ListNode>(h);
  });
  REQUIRE(a_null);
  REQUIRE(same);
  a.reset();  // the old registration goes; the new one holds the object
  gc_collect();
  REQUIRE(!freed(h));
  on_fresh_thread([&] {
    c = std::make_unique<tricolor::root<ListNode>>();
    *c = std::move(*b);  // move assignment
    b_null = *b == nullptr;
  });
  REQUIRE(b_null);
  b.reset();
  gc_collect();
  REQUIRE(!freed(h));
  c.reset();
  gc_collect();
  REQUIRE(freed(h));
}

TEST_CASE("roots in a std::vector survive its reallocation", "[cpp][root]") {
  ensure_heap();
  auto v = std::make_unique<std::vector<tricolor::root<ListNode>>>();
  std::vector<uintptr_t> hs;
  on_fresh_thread([&] {
    for (int i = 0; i < 100; i++) {  // growth moves every root to a new slot
      ListNode* n = tricolor::make<ListNode>();
      n->value = i;
      v->emplace_back(n);
      hs.push_back(hide(n));
    }
  });
  gc_collect();
  for (uintptr_t h : hs) REQUIRE(!freed(h));
  int wrong = 0;
  on_fresh_thread([&] {
    for (int i = 0; i < 100; i++) wrong += (*v)[i]->value != i;
  });
  REQUIRE(wrong == 0);
  v.reset();
  gc_collect();
  for (uintptr_t h : hs) REQUIRE(freed(h));
}

TEST_CASE("a global root keeps its object alive", "[cpp][root]") {
  ensure_heap();
  uintptr_t h = 0;
  on_fresh_thread([&] {
    g_global = tricolor::make<ListNode>();
    h = hide(g_global.get());
  });
  gc_collect();
  REQUIRE(!freed(h));
  g_global = nullptr;
  gc_collect();
  REQUIRE(freed(h));
}

TEST_CASE("a root<const T> keeps an immutable object alive", "[cpp][root]") {
  ensure_heap();
  std::unique_ptr<tricolor::root<const ListNode>> a, b, c;
  uintptr_t h = 0, other_h = 0;
  long v = 0;
  on_fresh_thread([&] {
    ListNode* n = tricolor::make<ListNode>();
    n->value = 9;
    n->next = tricolor::make<ListNode>();
    const ListNode* cn = n;
    a = std::make_unique<tricolor::root<const ListNode>>(cn);  // explicit constructor
    b = std::make_unique<tricolor::root<const ListNode>>();
    *b = static_cast<const ListNode*>(tricolor::make<ListNode>());  // assignment from const T*
    other_h = hide(b->get());
    *b = std::move(*a);  // move assignment
    c = std::make_unique<tricolor::root<const ListNode>>(std::move(*b));  // move construction
    h = hide(cn);
    v = (*c)->value;
  });
  REQUIRE(v == 9);
  a.reset();
  b.reset();
  gc_collect();
  REQUIRE(!freed(h));  // held only by *c
  REQUIRE(freed(other_h));
  c.reset();
  gc_collect();
  REQUIRE(freed(h));
}
