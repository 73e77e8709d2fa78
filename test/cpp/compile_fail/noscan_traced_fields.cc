// make_noscan<T> must reject a T with traced fields: the collector would never scan them.
#include "tricolor/gc.hpp"

struct Node {
  tricolor::member<Node> next;
  long value;
  using gc_fields = tricolor::fields<&Node::next>;
};

Node* f() { return tricolor::make_noscan<Node>(); }
