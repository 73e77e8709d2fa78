// Two stores of a heap pointer: through member<T> and through the C API by hand. Their
// generated code must be the same (check.py --same-code).
#include "tricolor/gc.hpp"

struct Node {
  tricolor::member<Node> left;
  long value;
  using gc_fields = tricolor::fields<&Node::left>;
};

struct CNode {
  CNode* left;
  long value;
};

// nonnull: a store into a field of an object the caller holds (the NULL-slot test of
// gc_write_ptr folds away in both, whatever the compiler knows about `this`).
extern "C" [[gnu::nonnull(1)]] void store_member(Node* n, Node* v) { n->left = v; }
extern "C" [[gnu::nonnull(1)]] void store_c_api(CNode* n, CNode* v) { gc_write_ptr(&n->left, v); }
