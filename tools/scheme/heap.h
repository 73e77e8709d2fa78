// The interpreter's view of the heap: one small shim, selected at compile time.
//
// The default build (SCHEME_BDWGC undefined) is a plain tricolor program written with
// tricolor/gc.hpp: traced fields are tricolor::member<T>, objects come from make / make_noscan
// / make_array, globals are tricolor::root<T>, and spawn/join are tricolor fibers.
//
// The bdwgc build (-DSCHEME_BDWGC=1, executable scheme-bdwgc) exists for the performance
// comparison only: the same interpreter with Boehm-Demers-Weiser GC as its allocator. Fields
// are plain pointers (bdwgc needs no barrier), objects come from GC_MALLOC / GC_MALLOC_ATOMIC,
// and spawn runs the thunk to completion at once (no fibers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#if SCHEME_BDWGC
#include <gc/gc.h>
#else
#include "tricolor/gc.hpp"
#endif

namespace scheme::heap {

#if SCHEME_BDWGC

template <class T>
class ref {  // a traced field: a plain pointer under bdwgc
 public:
  ref() noexcept : p_(nullptr) {}
  ref(T* p) noexcept : p_(p) {}  // NOLINT
  ref& operator=(T* p) noexcept {
    p_ = p;
    return *this;
  }
  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  operator T*() const noexcept { return p_; }  // NOLINT

 private:
  T* p_;
};

template <auto... F>
struct fields {};

template <class T>
class root {  // bdwgc scans the data segment: a global pointer is a root by itself
 public:
  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  operator T*() const noexcept { return p_; }  // NOLINT
  root& operator=(T* p) noexcept {
    p_ = p;
    return *this;
  }

 private:
  T* p_ = nullptr;
};

[[noreturn]] void out_of_memory_bdwgc(size_t request);

inline void* checked(void* p, size_t n) {
  if (!p) out_of_memory_bdwgc(n);
  return p;
}

template <class T, class... A>
T* make(A&&... a) {
  return ::new (checked(GC_MALLOC(sizeof(T)), sizeof(T))) T{std::forward<A>(a)...};
}
template <class T, class... A>
T* make_noscan(size_t extra, A&&... a) {
  void* p = checked(GC_MALLOC_ATOMIC(sizeof(T) + extra), sizeof(T) + extra);
  __builtin_memset(p, 0, sizeof(T) + extra);  // GC_MALLOC_ATOMIC does not clear
  return ::new (p) T{std::forward<A>(a)...};
}
template <class T>
ref<T>* make_refs(size_t n) {  // GC_MALLOC clears
  return static_cast<ref<T>*>(checked(GC_MALLOC(n * sizeof(ref<T>) + 1), n * sizeof(ref<T>)));
}

struct blocking_region {  // nothing to tell bdwgc
  blocking_region() {}
  ~blocking_region() {}
};

#else

template <class T>
using ref = tricolor::member<T>;
template <auto... F>
using fields = tricolor::fields<F...>;
template <class T>
using root = tricolor::root<T>;
using blocking_region = tricolor::blocking_region;

template <class T, class... A>
T* make(A&&... a) {
  return tricolor::make<T>(std::forward<A>(a)...);
}
template <class T, class... A>
T* make_noscan(size_t extra, A&&... a) {
  return tricolor::make_noscan<T>(tricolor::additional_bytes{extra}, std::forward<A>(a)...);
}
template <class T>
ref<T>* make_refs(size_t n) {
  return tricolor::make_array<tricolor::member<T>>(n);
}

#endif

}  // namespace scheme::heap
