// fields<...> must reject a field that is not a member<U>.
#include "tricolor/gc.hpp"

struct Node {
  Node* left;  // a raw pointer: not barriered, cannot be in the precise map
  tricolor::member<Node> right;
  using gc_fields = tricolor::fields<&Node::left, &Node::right>;
};

Node* f() { return tricolor::make<Node>(); }
