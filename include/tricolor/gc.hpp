// tricolor: the C++ API, header-only, over gc.h and fiber.h.
//
//   struct Node {
//     tricolor::member<Node> left, right;   // traced pointer fields; assignment = gc_write_ptr
//     long value;
//     using gc_fields = tricolor::fields<&Node::left, &Node::right>;  // the precise pointer map
//   };
//   Node* n = tricolor::make<Node>();           // zeroed, then constructed in place
//   n->left = tricolor::make<Node>();           // one barriered store
//   tricolor::root<Node> keep(n);               // a registered root for as long as `keep` lives
//
// The pieces, and what each costs next to the C API:
//
//   member<T>        one pointer word in a heap object. Reading is a plain load; assigning is
//                    gc_write_ptr (barrier off: one relaxed load, one predicted branch, one
//                    store). test/cpp/member_test.cc records the generated code of a store.
//   fields<&T::a...> the precise pointer map of T, named by T::gc_fields. Its gc_type is built
//                    once per T, on the first allocation (a function-local static: one load and
//                    a branch afterwards). A T without gc_fields is scanned conservatively,
//                    and so is a T whose gc_fields comes from a base and names none of T's
//                    own fields while T is larger than the base (T added fields the base's
//                    map does not know: give T a gc_fields of its own to keep it precise).
//                    gc_fields must be public. Fields of a virtual base cannot be listed.
//   make<T>(args)    gc_alloc + placement new. GC'd objects never run destructors, so T must be
//                    trivially destructible (checked at compile time).
//   make_noscan<T>   gc_alloc_noscan for pointer-free types, optionally with additional_bytes
//                    for a variable-length tail (strings, byte buffers).
//   make_array<T>(n) n elements of T, scanned per element: T's map when T has gc_fields, every
//                    element as a pointer when T is member<U>, not at all when T is arithmetic,
//                    conservatively otherwise.
//   root<T>          a pointer outside the heap (a global, a container in malloc'd memory) that
//                    keeps its object alive: RAII gc_add_root of its own slot. Movable.
//   blocking_region  RAII gc_blocking_begin/end: a system call or a lock wait that touches no
//                    heap pointer, which the collector never waits for.
//   thread_attachment  RAII gc_thread_attach/detach for a thread that allocates (nests).
//   go(callable)     a fiber (fiber.h); returns a handle with join(). run(callable) wraps gc_run.
//                    The callable object itself is kept alive until the fiber starts: heap
//                    pointers must be in it (a lambda's captures), not in memory it owns
//                    elsewhere (a std::function's captures too large for its own buffer live
//                    in malloc'd memory, which is not scanned). Outside a fiber go throws
//                    std::logic_error; on a fiber whose gc_go fails (no stack could be
//                    mapped, or a call inside a blocking region, as the log says) bad_alloc.
//
// Heap pointers in local variables need nothing: stacks and registers are scanned
// conservatively. Failure to allocate throws std::bad_alloc (std::abort without exceptions),
// like operator new.
#ifndef TRICOLOR_GC_HPP_
#define TRICOLOR_GC_HPP_

// Concepts and requires-clauses below need C++20; an older standard would otherwise fail on
// them with errors that do not name the cause. The rest of the header is skipped then, so
// that this is the header's only error.
#if __cplusplus < 202002L
#error "tricolor/gc.hpp needs C++20 (-std=c++20); C++17 code can use tricolor/gc.h"
#else

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

#include "tricolor/fiber.h"
#include "tricolor/gc.h"

namespace tricolor {

template <class T>
class member;

namespace detail {

template <class T>
struct is_member : std::false_type {};
template <class U>
struct is_member<member<U>> : std::true_type {};
template <class U, std::size_t N>
struct is_member<member<U>[N]> : std::true_type {};

// Splits a pointer to data member `F C::*` into C and F.
// C is T, or a base of T at a fixed offset (public, unambiguous, not virtual): a pointer to
// C converts back to a pointer to T only then.
template <class C, class T>
concept fixed_offset_base = std::is_same_v<C, T> || requires(C* c) { static_cast<T*>(c); };

template <class M>
struct member_pointer_traits;
template <class C, class F>
struct member_pointer_traits<F C::*> {
  using class_type = C;
  using field_type = F;
};

// The value a member<T> or root<T> stores through gc_write_ptr, which takes a void* even for
// T = const U (an interned string held as const). Dropping const is safe: nothing writes
// through the stored pointer, and get() hands it back as a T*.
template <class T>
inline void* slot_value(T* p) noexcept {
  return const_cast<void*>(static_cast<const volatile void*>(p));
}

[[noreturn, gnu::cold, gnu::noinline]] inline void alloc_failed() {
#if defined(__cpp_exceptions)
  throw std::bad_alloc();
#else
  std::fputs("tricolor: allocation failed\n", stderr);
  std::abort();
#endif
}

[[noreturn, gnu::cold, gnu::noinline]] inline void misuse(const char* what) {
#if defined(__cpp_exceptions)
  throw std::logic_error(what);
#else
  std::fprintf(stderr, "tricolor: %s\n", what);
  std::abort();
#endif
}

// The name of T as the compiler spells it, for gc_type names (heap-trace samples by type).
template <class T>
constexpr std::string_view type_name() {
  std::string_view f = __PRETTY_FUNCTION__;  // "... type_name() [with T = Node; ...]" (gcc)
  std::size_t b = f.find("T = ");            // or "... type_name() [T = Node]" (clang)
  if (b == std::string_view::npos) return "<type>";
  b += 4;
  std::size_t e = f.find_first_of(";]", b);
  return f.substr(b, e - b);
}

}  // namespace detail

// ---- member<T> ---------------------------------------------------------------------------------

// A traced pointer field of a heap object: one pointer word, standard-layout. Reads are
// plain (relaxed) loads; every store goes through gc_write_ptr, the hybrid write barrier
// (INV-BARRIER-1 in lib/gc). Initialising stores count too: a pointer copied from a stack
// the collector has not scanned yet must be shaded, whatever the slot held before.
//
// A member may hold any bit pattern a T* can hold (runtimes keep tagged integers in them):
// the collector validates every candidate word before it follows it.
template <class T>
class member {
 public:
  using element_type = T;

  // The pointer constructors store once, through the barrier (a fresh heap slot holds zero,
  // so the barrier sees a null old value). Stores are not marked noexcept although they never
  // throw: the C slow path is not declared noexcept, and a noexcept caller would need a
  // terminate landing pad, which turns the slow path's tail call into a call and a frame.
  constexpr member() noexcept : ptr_(nullptr) {}
  member(std::nullptr_t) noexcept : ptr_(nullptr) {}  // NOLINT: implicit, like a raw pointer
  member(T* p) { gc_write_ptr(&ptr_, detail::slot_value(p)); }  // NOLINT
  member(const member& o) { gc_write_ptr(&ptr_, detail::slot_value(o.get())); }
  template <class U>
    requires std::is_convertible_v<U*, T*>
  member(const member<U>& o) {  // NOLINT
    gc_write_ptr(&ptr_, detail::slot_value(static_cast<T*>(o.get())));
  }

  member& operator=(T* p) {
    gc_write_ptr(&ptr_, detail::slot_value(p));
    return *this;
  }
  member& operator=(std::nullptr_t) {
    gc_write_ptr(&ptr_, nullptr);
    return *this;
  }
  member& operator=(const member& o) {
    gc_write_ptr(&ptr_, detail::slot_value(o.get()));
    return *this;
  }
  template <class U>
    requires std::is_convertible_v<U*, T*>
  member& operator=(const member<U>& o) {
    gc_write_ptr(&ptr_, detail::slot_value(static_cast<T*>(o.get())));
    return *this;
  }

  // Relaxed: a plain mov; concurrent markers and other mutators store with relaxed atomics.
  T* get() const noexcept { return static_cast<T*>(__atomic_load_n(&ptr_, __ATOMIC_RELAXED)); }
  T* operator->() const noexcept { return get(); }
  T& operator*() const noexcept { return *get(); }
  operator T*() const noexcept { return get(); }  // NOLINT: implicit, like a raw pointer
  explicit operator bool() const noexcept { return get() != nullptr; }
  friend bool operator==(const member& a, std::nullptr_t) noexcept { return a.get() == nullptr; }
  friend bool operator==(const member& a, const member& b) noexcept { return a.get() == b.get(); }
  friend bool operator==(const member& a, T* b) noexcept { return a.get() == b; }

 private:
  void* ptr_;  // void*: gc_write_ptr stores through void**, so the slot is one
};

// ---- fields<...>: the precise pointer map --------------------------------------------------

// `using gc_fields = tricolor::fields<&T::a, &T::b>;` names every traced field of T. Each must be
// a member<U> (or an array of them) of T or of a base of T; every other word of T is not
// scanned, so an integer field never keeps anything alive.
template <auto... Fields>
struct fields {
  static_assert((std::is_member_object_pointer_v<decltype(Fields)> && ...),
                "tricolor::fields<...>: every argument must be a pointer to a data member, "
                "like &Node::left");
  static_assert(
      (detail::is_member<
           typename detail::member_pointer_traits<decltype(Fields)>::field_type>::value &&
       ...),
      "tricolor::fields<...>: every field in gc_fields must be a tricolor::member<U> (or an "
      "array of them); raw pointers and other types are not traced precisely. Use member<U> "
      "for traced pointers, or drop gc_fields to scan T conservatively");

  static constexpr std::size_t count() {
    return (std::size_t{0} + ... +
            (sizeof(typename detail::member_pointer_traits<decltype(Fields)>::field_type) /
             sizeof(void*)));
  }

  // Offsets of every pointer word of T, computed from the member pointers on a dummy buffer
  // (no object is constructed or read). Runs once per T.
  template <class T>
  static void offsets(std::size_t* out) {
    static_assert((std::is_base_of_v<
                       typename detail::member_pointer_traits<decltype(Fields)>::class_type, T> &&
                   ...),
                  "tricolor::fields<...>: a field belongs to a class that is not T nor a base "
                  "of T");
    // A field of a virtual base has no fixed offset in T (it is found through the vtable,
    // which the dummy buffer below does not have: make<T> crashed computing it).
    static_assert((detail::fixed_offset_base<
                       typename detail::member_pointer_traits<decltype(Fields)>::class_type, T> &&
                   ...),
                  "tricolor::fields<...>: a field of a virtual base (or of a private or "
                  "ambiguous base) of T has no fixed offset in T; list only fields of T and of "
                  "its public non-virtual bases, or drop gc_fields to scan T conservatively");
    alignas(T) static unsigned char buf[sizeof(T)];
    T* t = reinterpret_cast<T*>(buf);
    std::size_t k = 0;
    auto add = [&](const auto& f) {
      std::size_t off = static_cast<std::size_t>(reinterpret_cast<const unsigned char*>(&f) - buf);
      for (std::size_t w = 0; w < sizeof(f) / sizeof(void*); w++) out[k++] = off + w * sizeof(void*);
    };
    (add(t->*Fields), ...);
  }
};

namespace detail {

template <class T>
struct is_fields : std::false_type {};
template <auto... F>
struct is_fields<fields<F...>> : std::true_type {};

template <class T>
concept has_gc_fields = requires { typename T::gc_fields; };

// Whether T::gc_fields maps all of T. A gc_fields found in a base names only the base's
// fields: a derived class that adds member<U> fields without a gc_fields of its own would be
// scanned by the base's map, and the objects its new fields hold were freed while reachable.
// So the map is used when one of its fields is T's own, or when its classes are as large as T
// (T adds no data); otherwise T is scanned conservatively (safe, less precise).
template <class T, auto... F>
constexpr bool fields_cover(fields<F...>*) {
  if constexpr (sizeof...(F) == 0) {
    return true;  // no field to say whose map it is (a pointer-free T)
  } else {
    constexpr bool own =
        (std::is_same_v<typename member_pointer_traits<decltype(F)>::class_type, T> || ...);
    constexpr std::size_t largest = std::max(
        {sizeof(typename member_pointer_traits<decltype(F)>::class_type)...});
    return own || largest == sizeof(T);
  }
}
template <class T>
constexpr bool precise_map() {
  if constexpr (!has_gc_fields<T>)
    return false;
  else if constexpr (!is_fields<typename T::gc_fields>::value)
    return true;  // build_type says what gc_fields must be
  else
    return fields_cover<T>(static_cast<typename T::gc_fields*>(nullptr));
}

template <class T>
const gc_type* build_type() {
  using F = typename T::gc_fields;
  static_assert(is_fields<F>::value,
                "T::gc_fields must be tricolor::fields<&T::a, &T::b, ...>");
  static_assert(sizeof(T) % sizeof(void*) == 0 || F::count() == 0,
                "a type with traced fields must have a size that is a multiple of 8");
  constexpr std::size_t n = F::count();
  std::size_t offs[n ? n : 1];
  F::template offsets<T>(offs);
  constexpr std::string_view name = type_name<T>();
  char cname[128] = {};  // gc_type_new copies the name
  std::size_t len = name.size() < sizeof cname - 1 ? name.size() : sizeof cname - 1;
  for (std::size_t i = 0; i < len; i++) cname[i] = name[i];
  const gc_type* t = gc_type_new(cname, sizeof(T), offs, n);
  if (!t) misuse("gc_type_new rejected the pointer map of a type (see the log)");
  return t;
}

// The gc_type of T, built on first use. Cost afterwards: the guard load of a function-local
// static and a branch.
template <class T>
const gc_type* type_of() {
  if constexpr (precise_map<T>()) {
    static const gc_type* const t = build_type<T>();
    return t;
  } else {
    return nullptr;  // conservative
  }
}

// One pointer word: the element type of member<U> arrays.
inline const gc_type* pointer_word_type() {
  static const gc_type* const t = [] {
    std::size_t off = 0;
    return gc_type_new("tricolor::member[]", sizeof(void*), &off, 1);
  }();
  return t;
}

template <class T, class... A>
T* construct(void* p, A&&... a) {
  if constexpr (std::is_constructible_v<T, A...>)
    return ::new (p) T(std::forward<A>(a)...);
  else
    return ::new (p) T{std::forward<A>(a)...};  // aggregates (clang 14 lacks P0960)
}

}  // namespace detail

// ---- Allocation ------------------------------------------------------------------------------

// Extra bytes after a make_noscan<T> object, for a variable-length tail:
//   auto* s = tricolor::make_noscan<Str>(tricolor::additional_bytes{len + 1}, len);
// The total is rounded up to a multiple of alignof(T), so the object may get a few more.
struct additional_bytes {
  std::size_t bytes;
};

// A new T on the heap, constructed from args. Precise when T has gc_fields, else conservative.
template <class T, class... A>
T* make(A&&... args) {
  if constexpr (std::is_array_v<T>) {
    // Alone: the checks below would add errors of their own for an array type (not
    // trivially destructible, sizeof of an incomplete type).
    static_assert(!std::is_array_v<T>, "tricolor::make<T[]>: use tricolor::make_array<T>(n)");
    return nullptr;
  } else {
    static_assert(alignof(T) <= 16, "tricolor::make<T>: the heap aligns objects to 16 bytes at "
                                    "most, and T asks for more (alignas above 16)");
    static_assert(std::is_trivially_destructible_v<T>,
                  "tricolor::make<T>: GC'd objects never run destructors, so T must be trivially "
                  "destructible (no std::string, std::vector or unique_ptr fields: use member<U>, "
                  "make_array and make_noscan objects instead)");
    void* p = gc_alloc(sizeof(T), detail::type_of<T>());
    if (__builtin_expect(p == nullptr, 0)) detail::alloc_failed();
    return detail::construct<T>(p, std::forward<A>(args)...);
  }
}

// A new pointer-free T: the collector never scans it (strings, numbers, byte buffers).
template <class T, class... A>
T* make_noscan(A&&... args) {
  static_assert(std::is_trivially_destructible_v<T>,
                "tricolor::make_noscan<T>: GC'd objects never run destructors, so T must be "
                "trivially destructible");
  static_assert(alignof(T) <= 16, "tricolor::make_noscan<T>: the heap aligns objects to 16 bytes "
                                  "at most, and T asks for more (alignas above 16)");
  if constexpr (detail::has_gc_fields<T>)
    static_assert(T::gc_fields::count() == 0,
                  "tricolor::make_noscan<T>: T has traced fields (gc_fields); use make<T>");
  void* p = gc_alloc_noscan(sizeof(T));
  if (__builtin_expect(p == nullptr, 0)) detail::alloc_failed();
  return detail::construct<T>(p, std::forward<A>(args)...);
}

template <class T, class... A>
T* make_noscan(additional_bytes extra, A&&... args) {
  static_assert(std::is_trivially_destructible_v<T>,
                "tricolor::make_noscan<T>: GC'd objects never run destructors, so T must be "
                "trivially destructible");
  static_assert(alignof(T) <= 16, "tricolor::make_noscan<T>: the heap aligns objects to 16 bytes "
                                  "at most, and T asks for more (alignas above 16)");
  if constexpr (detail::has_gc_fields<T>)
    static_assert(T::gc_fields::count() == 0,
                  "tricolor::make_noscan<T>: T has traced fields (gc_fields); use make<T>");
  if (extra.bytes > SIZE_MAX / 2) detail::alloc_failed();
  // The heap aligns an object under 16 B only to its size's lowest set bit (gc.h), so the
  // size must be a multiple of alignof(T) for T to be aligned: sizeof(T) is, the tail may
  // not be (Str{uint64_t len; char data[];} with 3 bytes is 11 B, aligned to 1).
  std::size_t size = (sizeof(T) + extra.bytes + alignof(T) - 1) & ~(alignof(T) - 1);
  void* p = gc_alloc_noscan(size);
  if (__builtin_expect(p == nullptr, 0)) detail::alloc_failed();
  return detail::construct<T>(p, std::forward<A>(args)...);
}

// n value-initialised elements of T (n may be 0). The object is scanned element by element.
template <class T>
T* make_array(std::size_t n) {
  static_assert(std::is_trivially_destructible_v<T>,
                "tricolor::make_array<T>: GC'd objects never run destructors, so T must be "
                "trivially destructible");
  static_assert(alignof(T) <= 16, "tricolor::make_array<T>: the heap aligns objects to 16 bytes at most, "
                                  "and T asks for more (alignas above 16)");
  if (n > SIZE_MAX / sizeof(T)) detail::alloc_failed();
  // At least alignof(T) bytes: an empty array of 16-aligned T got gc_alloc(0)'s 8-byte object.
  const std::size_t bytes = n ? n * sizeof(T) : alignof(T);
  void* p;
  if constexpr (detail::is_member<T>::value)
    p = gc_alloc(bytes, detail::pointer_word_type());
  else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>)
    p = gc_alloc_noscan(bytes);
  else
    p = gc_alloc(bytes, detail::type_of<T>());
  if (__builtin_expect(p == nullptr, 0)) detail::alloc_failed();
  T* a = static_cast<T*>(p);
  if constexpr (std::is_trivially_default_constructible_v<T>) {
    // The memory is zeroed: for such T that is the value-initialised representation.
    return std::launder(a);
  } else {
    for (std::size_t i = 0; i < n; i++) ::new (a + i) T();
    return a;
  }
}

// ---- root<T> -----------------------------------------------------------------------------------

// A pointer held outside the heap that keeps its object alive: the root registers its own
// slot with gc_add_root and removes it when destroyed. Its stores go through the write
// barrier. Movable, not copyable: a moved-from root holds
// nullptr. Costs a lock on construction and destruction; meant for globals and long-lived
// handles, not for locals (locals are scanned anyway).
template <class T>
class root {
 public:
  root() { gc_add_root(&ptr_, sizeof ptr_); }
  explicit root(T* p) : ptr_(p) { gc_add_root(&ptr_, sizeof ptr_); }
  root(std::nullptr_t) : root() {}  // NOLINT
  root(const root&) = delete;
  root& operator=(const root&) = delete;
  root(root&& o) : ptr_(o.ptr_) {
    gc_add_root(&ptr_, sizeof ptr_);
    gc_write_ptr(&o.ptr_, nullptr);
  }
  root& operator=(root&& o) noexcept {
    T* p = o.ptr_;
    gc_write_ptr(&o.ptr_, nullptr);
    gc_write_ptr(&ptr_, detail::slot_value(p));
    return *this;
  }
  ~root() { gc_remove_root(&ptr_); }

  // Barriered (gc_write_ptr accepts root slots): a root<T> may hand pointers between
  // threads and fibers safely (see gc_add_root in gc.h).
  root& operator=(T* p) noexcept {
    gc_write_ptr(&ptr_, detail::slot_value(p));
    return *this;
  }
  root& operator=(std::nullptr_t) noexcept {
    gc_write_ptr(&ptr_, nullptr);
    return *this;
  }

  T* get() const noexcept { return ptr_; }
  T* operator->() const noexcept { return ptr_; }
  T& operator*() const noexcept { return *ptr_; }
  operator T*() const noexcept { return ptr_; }  // NOLINT
  explicit operator bool() const noexcept { return ptr_ != nullptr; }
  friend bool operator==(const root& a, std::nullptr_t) noexcept { return a.ptr_ == nullptr; }
  friend bool operator==(const root& a, T* b) noexcept { return a.ptr_ == b; }

 private:
  T* ptr_ = nullptr;
};

// ---- RAII guards -------------------------------------------------------------------------------

// A region that touches no heap pointer (a system call, a lock wait): the collector never
// waits for it. Regions nest.
class blocking_region {
 public:
  blocking_region() noexcept { gc_blocking_begin(); }
  ~blocking_region() { gc_blocking_end(); }
  blocking_region(const blocking_region&) = delete;
  blocking_region& operator=(const blocking_region&) = delete;
};

// Attaches the calling thread for the guard's lifetime (a thread that allocates or holds heap
// pointers). ok() is false when gc_thread_attach failed (no heap yet).
//
// Guards nest, and a guard on a thread that is attached already (the thread that called
// gc_init, a fiber's thread) does nothing: attachment itself does not nest (gc_thread_attach
// returns 0 on an attached thread too, and one gc_thread_detach ends it), so a guard detaches
// only an attachment it made.
class thread_attachment {
 public:
  thread_attachment() noexcept {
    if (gc_thread_is_attached()) {
      ok_ = true;
    } else {
      ok_ = owns_ = gc_thread_attach() == 0;
    }
  }
  ~thread_attachment() {
    if (owns_) gc_thread_detach();
  }
  thread_attachment(const thread_attachment&) = delete;
  thread_attachment& operator=(const thread_attachment&) = delete;
  bool ok() const noexcept { return ok_; }

 private:
  bool ok_ = false;
  bool owns_ = false;  // this guard attached the thread, so it detaches it
};

// ---- Fibers (fiber.h) ----------------------------------------------------------------------

// A handle on a fiber started by go(). join() parks the caller until the fiber has returned;
// at most once. A handle dropped without join() leaves the fiber running (it is released
// when gc_run returns).
class fiber {
 public:
  fiber() noexcept = default;
  explicit fiber(gc_fiber* f) noexcept : f_(f) {}
  fiber(fiber&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  fiber& operator=(fiber&& o) noexcept {
    f_ = std::exchange(o.f_, nullptr);
    return *this;
  }
  fiber(const fiber&) = delete;
  fiber& operator=(const fiber&) = delete;

  bool joinable() const noexcept { return f_ != nullptr; }
  void join() {
    if (!f_) detail::misuse("tricolor::fiber::join: not joinable (joined already, or empty)");
    gc_join(std::exchange(f_, nullptr));
  }
  gc_fiber* native_handle() const noexcept { return f_; }

 private:
  gc_fiber* f_ = nullptr;
};

namespace detail {

// The callable travels to the new fiber in a malloc'd box registered as a root, so heap
// pointers it captures stay alive until the fiber has moved it onto its own (scanned) stack.
template <class F>
struct go_box {
  F fn;
};

template <class F>
void go_trampoline(void* arg) noexcept {
  auto* box = static_cast<go_box<F>*>(arg);
  F fn(std::move(box->fn));
  gc_remove_root(box);
  delete box;
  fn();  // an exception escaping a fiber terminates the program, as with std::thread
}

template <class F>
void run_trampoline(void* arg) noexcept {
  (*static_cast<F*>(arg))();
}

}  // namespace detail

// Starts callable() on a new fiber ("go f()"). Only inside run()/gc_run.
template <class F>
[[nodiscard]] fiber go(F&& callable) {
  using Fn = std::decay_t<F>;
  auto* box = new detail::go_box<Fn>{std::forward<F>(callable)};
  gc_add_root(box, sizeof *box);
  gc_fiber* f = gc_go(&detail::go_trampoline<Fn>, box);
  if (!f) {
    gc_remove_root(box);
    delete box;
    if (gc_fiber_self() == nullptr)
      detail::misuse("tricolor::go: called outside run()/gc_run (not on a fiber)");
    // On a fiber: no stack could be mapped for the new one (resources), or the call came from
    // inside a blocking region (misuse); the library's message on stderr says which.
    detail::alloc_failed();
  }
  return fiber(f);
}

// Runs callable() as the first fiber of the scheduler; returns when every fiber is done.
// 0 on success, -1 on misuse (see gc_run). The callable's own captures are registered as a
// root while it runs (the calling thread's stack is the scheduler's now); objects it reaches
// through captured references must be reachable some other way, e.g. from a root<T>.
template <class F>
int run(F callable) {
  gc_add_root(std::addressof(callable), sizeof callable);
  int rc = gc_run(&detail::run_trampoline<F>, static_cast<void*>(std::addressof(callable)));
  gc_remove_root(std::addressof(callable));
  return rc;
}

inline void yield() { gc_yield(); }

// As std::this_thread::sleep_for: a duration of zero or less returns at once; one too long
// for 64-bit nanoseconds sleeps "forever" (gc_sleep's 2^63 ns). The count is converted in
// floating point: duration_cast to nanoseconds overflowed for hours::max(), and a negative
// count cast to uint64_t slept for 292 years.
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  if (d <= d.zero()) return;
  long double ns = std::chrono::duration<long double, std::nano>(d).count();
  gc_sleep(ns >= 9.2e18L ? UINT64_MAX : static_cast<uint64_t>(ns));
}

}  // namespace tricolor

#endif  // __cplusplus >= 202002L
#endif  // TRICOLOR_GC_HPP_
