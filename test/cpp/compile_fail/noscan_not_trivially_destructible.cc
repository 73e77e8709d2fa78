// make_noscan<T> must reject a T with a destructor: it would never run.
#include <string>

#include "tricolor/gc.hpp"

struct Text {
  std::string s;
};

Text* f() { return tricolor::make_noscan<Text>(); }
