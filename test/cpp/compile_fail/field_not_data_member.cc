// fields<...> must reject an argument that is not a pointer to a data member.
#include "tricolor/gc.hpp"

struct Node {
  tricolor::member<Node> next;
  Node* get_next() { return next; }
  using gc_fields = tricolor::fields<&Node::get_next>;
};

Node* f() { return tricolor::make<Node>(); }
