// make_noscan<T>(additional_bytes{n}) must reject a T with traced fields, like make_noscan<T>().
#include "tricolor/gc.hpp"

struct Node {
  tricolor::member<Node> next;
  long length;
  using gc_fields = tricolor::fields<&Node::next>;
};

Node* f() { return tricolor::make_noscan<Node>(tricolor::additional_bytes{16}); }
