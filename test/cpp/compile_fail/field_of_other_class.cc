// fields<...> must reject a field of a class that is neither T nor a base of T.
#include "tricolor/gc.hpp"

struct Other {
  tricolor::member<Other> link;
};

struct Node {
  tricolor::member<Node> next;
  tricolor::member<Other> other;
  using gc_fields = tricolor::fields<&Node::next, &Other::link>;
};

Node* f() { return tricolor::make<Node>(); }
