// make<T> must reject a T whose destructor would never run.
#include <string>

#include "tricolor/gc.hpp"

struct Named {
  std::string name;  // owns malloc'd memory: its destructor matters
};

Named* f() { return tricolor::make<Named>(); }
