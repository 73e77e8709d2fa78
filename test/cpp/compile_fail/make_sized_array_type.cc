// make<T[N]> must be rejected as well: the array form is make_array<T>(n).
#include "tricolor/gc.hpp"

long* f() { return *tricolor::make<long[4]>(); }
