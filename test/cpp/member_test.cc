// member<T> and fields<...>: traced pointer fields, and the precise pointer map they build.
//
// Generated code of a member store (g++ 12, -O2, x86-64). `n->left = v` where left is a
// member<Node> compiles to exactly the instructions of `gc_write_ptr(&n->left, v)` written by
// hand against the C API:
//
//     mov    eax, DWORD PTR tricolor_barrier_on[rip]   ; relaxed load of the barrier flag
//     test   eax, eax
//     jne    .Lslow                                    ; predicted not taken
//     mov    QWORD PTR [rdi], rsi                      ; the store
//     ret
//   .Lslow:
//     jmp    tricolor_write_ptr_slow                   ; tail call, out of line
//
// (with the GOT-relative load of tricolor_barrier_on when compiled as PIC). The test
// 'cpp-member-codegen' (compile_fail/check.py --same-code) compiles both functions and fails
// if their instruction streams ever differ, so this stays true.
#include <catch2/catch.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#include "support.h"
#include "tricolor/gc.hpp"

using namespace tricolor::cpptest;
using tricolor::member;

namespace {

struct Node {
  member<Node> left, right;
  long value = 0;
  using gc_fields = tricolor::fields<&Node::left, &Node::right>;
};

// One traced field, one word the collector must not treat as a pointer.
struct Holder {
  member<Node> traced;
  uintptr_t untraced = 0;
  using gc_fields = tricolor::fields<&Holder::traced>;
};

// No gc_fields: every word is scanned conservatively.
struct Loose {
  uintptr_t word = 0;
  member<Node> traced;
};

struct Base {
  member<Node> from_base;
};
struct Derived : Base {
  long pad = 0;
  member<Node> kids[3];
  using gc_fields = tricolor::fields<&Derived::from_base, &Derived::kids>;
};

// An immutable, pointer-free object (an interned string) and an object that refers to it
// through member<const T> fields.
struct Interned {
  size_t len;
  char bytes[24];
};
struct Symbol {
  member<const Interned> name;
  member<Interned> draft;  // a mutable one, converted to member<const Interned>
  member<const Interned> names[2];
  using gc_fields = tricolor::fields<&Symbol::name, &Symbol::draft, &Symbol::names>;
};

static_assert(sizeof(member<Node>) == sizeof(void*), "a member is one pointer word");
static_assert(std::is_standard_layout_v<member<Node>>);
static_assert(std::is_standard_layout_v<Node>);
static_assert(std::is_trivially_destructible_v<member<Node>>);
static_assert(Node::gc_fields::count() == 2);
static_assert(Derived::gc_fields::count() == 4, "an array of members counts each element");

}  // namespace

TEST_CASE("a member store is read back through get, ->, *, and the implicit T*", "[cpp][member]") {
  ensure_heap();
  Node* a = tricolor::make<Node>();
  Node* b = tricolor::make<Node>();
  b->value = 42;
  REQUIRE(a->left == nullptr);
  REQUIRE(!a->left);
  a->left = b;
  REQUIRE(a->left.get() == b);
  REQUIRE(a->left->value == 42);
  REQUIRE((*a->left).value == 42);
  Node* raw = a->left;
  REQUIRE(raw == b);
  REQUIRE(a->left != nullptr);
  REQUIRE(a->left == b);
  a->right = a->left;  // member to member
  REQUIRE(a->right == a->left);
  a->left = nullptr;
  REQUIRE(a->left == nullptr);
  REQUIRE(a->right.get() == b);
}

TEST_CASE("a member field in gc_fields keeps its target alive and an untraced word does not",
          "[cpp][member][fields]") {
  ensure_heap();
  auto keep = std::make_unique<tricolor::root<Holder>>();  // the root slot is off the stack
  uintptr_t traced_h = 0, untraced_h = 0;
  on_fresh_thread([&] {
    Holder* h = tricolor::make<Holder>();
    Node* t1 = tricolor::make<Node>();
    Node* t2 = tricolor::make<Node>();
    h->traced = t1;
    h->untraced = reinterpret_cast<uintptr_t>(t2);  // looks like a pointer, is not traced
    *keep = h;
    traced_h = hide(t1);
    untraced_h = hide(t2);
  });
  gc_collect();
  REQUIRE(!freed(traced_h));
  REQUIRE(freed(untraced_h));
  bool same = false;  // read on another thread, so no copy of the address stays in this frame
  on_fresh_thread([&] { same = (*keep)->traced.get() == unhide<Node>(traced_h); });
  REQUIRE(same);
  keep.reset();
  gc_collect();
  REQUIRE(freed(traced_h));
}

TEST_CASE("a type without gc_fields is scanned conservatively", "[cpp][member][fields]") {
  ensure_heap();
  auto keep = std::make_unique<tricolor::root<Loose>>();
  uintptr_t h_word = 0, h_traced = 0;
  on_fresh_thread([&] {
    Loose* l = tricolor::make<Loose>();
    Node* t1 = tricolor::make<Node>();
    Node* t2 = tricolor::make<Node>();
    l->word = reinterpret_cast<uintptr_t>(t1);
    l->traced = t2;
    *keep = l;
    h_word = hide(t1);
    h_traced = hide(t2);
  });
  gc_collect();
  REQUIRE(!freed(h_word));
  REQUIRE(!freed(h_traced));
  keep.reset();
  gc_collect();
  REQUIRE(freed(h_word));
  REQUIRE(freed(h_traced));
}

TEST_CASE("gc_fields may name members of a base class and arrays of members",
          "[cpp][member][fields]") {
  ensure_heap();
  auto keep = std::make_unique<tricolor::root<Derived>>();
  uintptr_t hs[4] = {};
  on_fresh_thread([&] {
    Derived* d = tricolor::make<Derived>();
    Node* from_base = tricolor::make<Node>();
    d->from_base = from_base;
    hs[0] = hide(from_base);
    for (int i = 0; i < 3; i++) {
      Node* k = tricolor::make<Node>();
      k->value = i;
      d->kids[i] = k;
      hs[i + 1] = hide(k);
    }
    d->pad = static_cast<long>(reinterpret_cast<uintptr_t>(from_base));  // untraced word
    *keep = d;
  });
  gc_collect();
  for (uintptr_t h : hs) REQUIRE(!freed(h));
  long values[3] = {};
  on_fresh_thread([&] {
    for (int i = 0; i < 3; i++) values[i] = (*keep)->kids[i]->value;
    // Clearing the traced fields frees every target although `pad` still holds an address.
    (*keep)->from_base = nullptr;
    for (auto& k : (*keep)->kids) k = nullptr;
  });
  for (int i = 0; i < 3; i++) REQUIRE(values[i] == i);
  gc_collect();
  for (uintptr_t h : hs) REQUIRE(freed(h));
}

TEST_CASE("a list built with member stores survives collections running beside the mutator",
          "[cpp][member]") {
  ensure_heap();
  // The mutator keeps relinking a list (old values cut, new values stored) while another
  // thread collects in a loop: the hybrid barrier behind member assignment must keep every
  // node that stays reachable.
  auto head = std::make_unique<tricolor::root<Node>>();
  std::atomic<bool> stop{false};
  std::thread collector([&] {
    tricolor::thread_attachment attach;
    while (!stop.load()) gc_collect();
  });
  constexpr int kLen = 200;
  for (int round = 0; round < 200; round++) {
    // Build a fresh list, then rotate it node by node through member stores only.
    Node* first = nullptr;
    for (int i = kLen - 1; i >= 0; i--) {
      Node* n = tricolor::make<Node>();
      n->value = i;
      n->left = first;
      first = n;
    }
    *head = tricolor::make<Node>();
    (*head)->left = first;
    first = nullptr;
    for (int r = 0; r < 10; r++) {
      Node* h = (*head)->left;  // move the first node to the end
      (*head)->left = h->left;
      h->left = nullptr;
      Node* t = (*head)->left;
      while (t->left) t = t->left;
      t->left = h;
    }
    long sum = 0;
    int count = 0;
    for (Node* p = (*head)->left; p; p = p->left) {
      REQUIRE(gc_base(p) == p);
      sum += p->value;
      count++;
    }
    REQUIRE(count == kLen);
    REQUIRE(sum == long(kLen) * (kLen - 1) / 2);
  }
  stop = true;
  {
    tricolor::blocking_region wait;
    collector.join();
  }
}

TEST_CASE("a member<const T> stores const pointers and keeps its target alive",
          "[cpp][member]") {
  ensure_heap();
  static_assert(std::is_same_v<decltype(std::declval<member<const Interned>&>().get()),
                               const Interned*>);
  auto keep = std::make_unique<tricolor::root<Symbol>>();
  uintptr_t name_h = 0, draft_h = 0;
  bool converted = false;
  on_fresh_thread([&] {
    Symbol* sym = tricolor::make<Symbol>();
    const Interned* name = tricolor::make_noscan<Interned>(Interned{5, "hello"});
    sym->name = name;  // from a const T*
    sym->draft = tricolor::make_noscan<Interned>();
    sym->names[0] = sym->draft;  // from a member<T>
    converted = sym->names[0] == sym->draft.get();
    sym->names[1] = sym->name;  // member<const T> to member<const T>
    member<const Interned> local(sym->draft);  // the converting constructor (a stack slot)
    converted = converted && local.get() == sym->draft.get();
    draft_h = hide(sym->draft.get());
    sym->draft = nullptr;
    sym->names[0] = nullptr;
    sym->names[1] = nullptr;
    *keep = sym;
    name_h = hide(name);
  });
  REQUIRE(converted);
  gc_collect();
  REQUIRE(!freed(name_h));  // held only by sym->name
  REQUIRE(freed(draft_h));
  size_t len = 0;
  on_fresh_thread([&] { len = (*keep)->name->len; });
  REQUIRE(len == 5);
  keep.reset();
  gc_collect();
  REQUIRE(freed(name_h));
}
