// Test support for the C++ API, over the public headers only: one heap per process, pointers
// hidden from the conservative stack scan, and short-lived attached threads.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <thread>

#include "support/scrub.h"
#include "tricolor/gc.hpp"

namespace tricolor::cpptest {

// The list node the tests build: one traced field, one plain one.
struct ListNode {
  tricolor::member<ListNode> next;
  long value = 0;
  using gc_fields = tricolor::fields<&ListNode::next>;
};

inline void ensure_heap() {
  static bool once = [] {
    if (gc_init(nullptr) != 0) std::abort();
    return true;
  }();
  (void)once;
}

// A pointer the conservative scanner cannot recognise.
inline constexpr uintptr_t kHideMask = 0x5a5a5a5a5a5a5a5aull;
inline uintptr_t hide(const void* p) { return reinterpret_cast<uintptr_t>(p) ^ kHideMask; }
template <class T = void>
T* unhide(uintptr_t h) {
  return reinterpret_cast<T*>(h ^ kHideMask);
}

[[gnu::noinline]] inline bool freed_unscrubbed(uintptr_t h) { return gc_base(unhide(h)) == nullptr; }

// True if the object that was at hidden address h is no longer an object. The unhidden
// address exists only in the frames of this check, which are scrubbed after it: a test
// may check an object alive, drop it, collect and check it freed, on one thread (seen
// failing without: the test files built with -Og left a checked address on the stack).
inline bool freed(uintptr_t h) {
  bool r = freed_unscrubbed(h);
  tricolor::test::scrub_stack_below();
  return r;
}

// Runs f on a new attached thread and waits for it: pointers f leaves on its stack are gone
// afterwards, so only what f stored in the heap or in roots can keep objects alive.
template <class F>
void on_fresh_thread(F&& f) {
  std::thread th([&] {
    tricolor::thread_attachment attach;
    if (!attach.ok()) std::abort();
    f();
  });
  tricolor::blocking_region wait;  // joining is a wait: the collector must not wait for us
  th.join();
}

}  // namespace tricolor::cpptest
