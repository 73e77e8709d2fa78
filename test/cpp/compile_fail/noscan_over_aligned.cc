// make_noscan<T> of a type aligned to more than 16 bytes must be rejected.
#include "tricolor/gc.hpp"

struct alignas(64) Line {
  char bytes[64];
};

void f() { tricolor::make_noscan<Line>(); }
