// make<T> of a type aligned to more than 16 bytes must be rejected: the heap gives at most 16.
#include "tricolor/gc.hpp"

struct alignas(32) Wide {
  double lanes[4];
};

void f() { tricolor::make<Wide>(); }
