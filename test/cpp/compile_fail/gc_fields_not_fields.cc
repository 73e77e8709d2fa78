// T::gc_fields must be a tricolor::fields<...>, not any other type.
#include "tricolor/gc.hpp"

struct Node {
  tricolor::member<Node> next;
  using gc_fields = int;
};

Node* f() { return tricolor::make<Node>(); }
