// Freed-memory poisoning for GC stress builds (meson -Dstress=true, TRICOLOR_STRESS):
// freed objects and spans are filled with a pattern (0xdb bytes) and, in AddressSanitizer
// builds, poisoned, so a use after free reads 0xdbdb... or stops at once with an ASan
// report naming the access. Memory is unpoisoned when the heap hands it out again (an
// object slot, a span's pages) or returns it to the page source. In other builds every
// function here is empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tricolor_config.h"

#if defined(__SANITIZE_ADDRESS__)
#define TRICOLOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRICOLOR_ASAN 1
#endif
#endif
#if TRICOLOR_STRESS && defined(TRICOLOR_ASAN)
#include <sanitizer/asan_interface.h>
#define TRICOLOR_POISON_ASAN 1
#endif

namespace tricolor::internal {

inline constexpr uint8_t kFreedPattern = 0xdb;

// A freed object or span [p, p + n).
inline void poison_freed(uintptr_t p, size_t n) {
#if TRICOLOR_STRESS
#ifdef TRICOLOR_POISON_ASAN
  ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(p), n);  // parts may be poisoned already
#endif
  memset(reinterpret_cast<void*>(p), kFreedPattern, n);
#ifdef TRICOLOR_POISON_ASAN
  ASAN_POISON_MEMORY_REGION(reinterpret_cast<void*>(p), n);
#endif
#else
  (void)p;
  (void)n;
#endif
}

// Memory handed out again (an object slot, a span's pages) or leaving the heap.
inline void unpoison_for_reuse(uintptr_t p, size_t n) {
#ifdef TRICOLOR_POISON_ASAN
  ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(p), n);
#else
  (void)p;
  (void)n;
#endif
}

}  // namespace tricolor::internal
