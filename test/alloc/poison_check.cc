// GC stress builds (-Dstress=true): a use after free shows at once. An object is allocated
// and filled on a short-lived thread, dropped, and collected; then
//   poison_check            checks that its slot holds the freed-memory pattern (0xdb
//                           bytes) and, under AddressSanitizer, that it is poisoned;
//   poison_check --read     reads it like a buggy program would. Under AddressSanitizer
//                           the read stops the program with a report (a should_fail test);
//                           it exits 0 only if the read went through unnoticed.
// Either way the set-up is checked first (the object is freed: gc_base no longer knows
// it), so that only the read itself can fail the death test.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "alloc/poison.h"
#include "support/heap.h"
#include "tricolor/gc.h"
#include "tricolor_config.h"

#ifdef TRICOLOR_POISON_ASAN
#include <sanitizer/asan_interface.h>
#endif

using namespace tricolor::test;

namespace {

constexpr size_t kSize = 96;

// Reads the freed bytes without ASan's check (the pattern is what a non-ASan build sees).
__attribute__((no_sanitize("address"))) [[gnu::noinline]] bool holds_pattern(uintptr_t h) {
  const volatile uint8_t* p = static_cast<const volatile uint8_t*>(unhide(h));
  for (size_t i = 0; i < kSize; i++)
    if (p[i] != tricolor::internal::kFreedPattern) return false;
  return true;
}

// The buggy read.
[[gnu::noinline]] uint8_t read_freed(uintptr_t h) {
  return static_cast<const volatile uint8_t*>(unhide(h))[kSize / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool read = argc > 1 && !strcmp(argv[1], "--read");
  if (gc_init(nullptr) != 0) return 1;
  uintptr_t h = 0;
  on_fresh_thread([&] {
    auto* p = static_cast<uint8_t*>(gc_alloc(kSize, nullptr));
    memset(p, 0x5c, kSize);
    h = hide(p);
  });
  bool gone = false;
  for (int i = 0; i < 8 && !gone; i++) {
    gc_collect();
    gone = freed(h);
  }
  if (!gone) {
    fprintf(stderr, "poison_check: the dropped object was not freed; nothing to check\n");
    return 0;  // not a use after free: a death test must not pass on it
  }
  if (read) {
    uint8_t b = read_freed(h);
    fprintf(stderr, "poison_check: a read of freed memory went unnoticed (it gave %#x)\n", b);
    return 0;
  }
  if (!holds_pattern(h)) {
    fprintf(stderr, "poison_check: the freed object does not hold the 0xdb pattern\n");
    return 1;
  }
#ifdef TRICOLOR_POISON_ASAN
  if (!__asan_region_is_poisoned(unhide(h), kSize)) {
    fprintf(stderr, "poison_check: the freed object is not poisoned for AddressSanitizer\n");
    return 1;
  }
  printf("poison_check: the freed object holds 0xdb bytes and is poisoned for ASan\n");
#else
  printf("poison_check: the freed object holds 0xdb bytes\n");
#endif
  return 0;
}
