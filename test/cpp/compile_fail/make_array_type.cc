// make<T[]> must be rejected: an array of unknown bound has no size; make_array<T>(n) is the form.
#include "tricolor/gc.hpp"

struct Node {
  tricolor::member<Node> next;
  using gc_fields = tricolor::fields<&Node::next>;
};

void f() { tricolor::make<Node[]>(); }
