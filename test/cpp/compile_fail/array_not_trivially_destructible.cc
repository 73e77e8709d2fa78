// make_array<T> must reject a T with a destructor: it would never run.
#include <string>

#include "tricolor/gc.hpp"

std::string* f() { return tricolor::make_array<std::string>(4); }
