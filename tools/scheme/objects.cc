// Constructors of heap objects and the static constants. See object.h.
#include "interp.h"

namespace scheme {

Obj kNil{Tag::kNil, 0}, kTrue{Tag::kTrue, 0}, kFalse{Tag::kFalse, 0},
    kUnspecified{Tag::kUnspecified, 0}, kEof{Tag::kEof, 0}, kUnbound{Tag::kUnbound, 0};

Value cons(Value a, Value d, uint32_t line) { return heap::make<Pair>(a, d, line); }

Value make_flonum(double d) {
  Flonum* f = heap::make_noscan<Flonum>(0);
  f->tag = Tag::kFlonum;
  f->d = d;
  return f;
}

String* make_string(std::string_view s) {
  if (s.size() > UINT32_MAX - 1) fail("string too long (%zu bytes)", s.size());
  String* str = heap::make_noscan<String>(s.size() + 1);
  str->tag = Tag::kString;
  str->aux = static_cast<uint32_t>(s.size());
  std::memcpy(str->data(), s.data(), s.size());
  str->data()[s.size()] = 0;
  return str;
}

Value make_vector(uint64_t n, Value fill) {
  if (n > (uint64_t{1} << 32)) fail("make-vector: %llu elements is too many", (unsigned long long)n);
  ref<Obj>* items = heap::make_refs<Obj>(n);
  for (uint64_t i = 0; i < n; i++) items[i] = fill;
  Vector* v = heap::make<Vector>();
  v->tag = Tag::kVector;
  v->len = n;
  v->items = items;
  return v;
}

Value make_primitive(const char* name, PrimFn fn, int min_args, int max_args) {
  Primitive* p = heap::make_noscan<Primitive>(0);
  p->tag = Tag::kPrimitive;
  p->fn = fn;
  p->name = name;
  p->min_args = min_args;
  p->max_args = max_args;
  return p;
}

}  // namespace scheme
