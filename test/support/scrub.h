// Test support over the public headers only: clearing the stack below a frame, so that a
// heap address a returned call left there cannot keep an object through the conservative
// stack scan.
#pragma once

#include <cstddef>

namespace tricolor::test {

// Zeroes `Bytes` of the stack below the caller's frame: the frames of calls that just
// returned may have left a heap address there, which a later conservative scan of this
// thread's stack would take for a live pointer (bdwgc's GC_clear_stack does this too).
template <size_t Bytes = 16 << 10>
[[gnu::noinline]] inline void scrub_stack_below() {
  volatile char buf[Bytes];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0;  // volatile: not optimised away
}

}  // namespace tricolor::test
