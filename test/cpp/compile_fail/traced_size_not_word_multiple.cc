// A type with traced fields whose size is not a multiple of 8 (here a packed struct) must be
// rejected: the collector scans whole, aligned words.
#include "tricolor/gc.hpp"

#pragma pack(push, 1)
struct Node {
  tricolor::member<Node> next;
  char tag;
  using gc_fields = tricolor::fields<&Node::next>;
};
#pragma pack(pop)
static_assert(sizeof(Node) == 9);

Node* f() { return tricolor::make<Node>(); }
