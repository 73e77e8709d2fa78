// The control case: the same shapes, written correctly, compile.
#include "tricolor/gc.hpp"

struct Node {
  tricolor::member<Node> left;
  tricolor::member<Node> right;
  long value;
  using gc_fields = tricolor::fields<&Node::left, &Node::right>;
};

Node* f() { return tricolor::make<Node>(); }
