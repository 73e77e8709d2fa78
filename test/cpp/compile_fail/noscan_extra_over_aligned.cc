// make_noscan<T>(additional_bytes) of a type aligned to more than 16 bytes must be rejected.
#include "tricolor/gc.hpp"

struct alignas(32) Head {
  long n;
};

void f() { tricolor::make_noscan<Head>(tricolor::additional_bytes{8}); }
