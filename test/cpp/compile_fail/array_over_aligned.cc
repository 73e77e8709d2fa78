// make_array<T> of a type aligned to more than 16 bytes must be rejected.
#include "tricolor/gc.hpp"

struct alignas(32) Wide {
  double lanes[4];
};

void f() { tricolor::make_array<Wide>(4); }
