// Bit-run iteration over a 64-bit mask, shared by the page caches (lib/alloc) and the sweep
// (lib/gc).
#pragma once

#include <cstdint>

namespace tricolor::internal {

// Calls f(first, count) for each maximal run of set bits of `bits`, lowest first.
template <class F>
inline void for_each_bit_run(uint64_t bits, F&& f) {
  while (bits) {
    unsigned i = static_cast<unsigned>(__builtin_ctzll(bits));
    uint64_t from_i = bits >> i;
    unsigned n = ~from_i ? static_cast<unsigned>(__builtin_ctzll(~from_i)) : 64 - i;
    f(i, n);
    bits &= n == 64 ? 0 : ~(((uint64_t{1} << n) - 1) << i);
  }
}

}  // namespace tricolor::internal
