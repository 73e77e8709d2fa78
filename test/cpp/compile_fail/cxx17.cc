// gc.hpp needs C++20: included from C++17 it must say so, and point to gc.h, rather than fail
// on its first requires-clause.
#include "tricolor/gc.hpp"

struct Node {
  long value;
};

Node* f() { return tricolor::make<Node>(); }
