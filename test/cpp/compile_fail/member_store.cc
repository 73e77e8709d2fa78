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

extern "C" void store_member(Node* n, Node* v) { n->left = v; }
extern "C" void store_c_api(CNode* n, CNode* v) { gc_write_ptr(&n->left, v); }
