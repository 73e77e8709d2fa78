// fields<...> must reject a field of a virtual base of T: it has no fixed offset in T (make<T>
// crashed computing it on a buffer without a vtable).
#include "tricolor/gc.hpp"

struct Base {
  tricolor::member<Base> link;
};

struct Node : virtual Base {
  tricolor::member<Node> next;
  using gc_fields = tricolor::fields<&Node::next, &Base::link>;
};

Node* f() { return tricolor::make<Node>(); }
