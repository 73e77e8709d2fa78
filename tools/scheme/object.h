// Scheme values and heap objects.
//
// A Value is one word: either a fixnum, tagged in its low bit (n << 1 | 1), or a pointer to an
// Obj, whose first word is a header (tag, and 32 bits the type uses: a pair's source line, a
// string's length, a symbol's special-form id, a closure's arity). The constants ((), #t, #f,
// the unspecified value, end of file, "unbound") are static objects outside the heap.
//
// Every other object is on the GC heap. Traced fields are heap::ref<T> named in gc_fields, so
// the collector scans each type precisely; fixnums stored in them are harmless (the collector
// validates every candidate pointer). Pointer-free objects (strings, flonums, primitives) are
// noscan. C++ locals hold Values freely: stacks are scanned conservatively.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "heap.h"

namespace scheme {

enum class Tag : uint32_t {
  kNil, kTrue, kFalse, kUnspecified, kEof, kUnbound,  // static constants
  kPair, kFlonum, kString, kSymbol, kVector, kClosure, kPrimitive, kEnv, kFiber, kTable,
};

struct Obj {
  Tag tag;
  uint32_t aux;
};
using Value = Obj*;
using heap::ref;

extern Obj kNil, kTrue, kFalse, kUnspecified, kEof, kUnbound;
inline Value nil() { return &kNil; }
inline Value boolean(bool b) { return b ? &kTrue : &kFalse; }

// ---- Fixnums: 63-bit integers in the value word ------------------------------------------------

constexpr int64_t kFixMax = (int64_t{1} << 62) - 1, kFixMin = -(int64_t{1} << 62);
inline bool is_fixnum(Value v) { return reinterpret_cast<uintptr_t>(v) & 1; }
inline int64_t fixval(Value v) { return static_cast<int64_t>(reinterpret_cast<uintptr_t>(v)) >> 1; }
inline Value fixnum(int64_t n) {
  return reinterpret_cast<Value>(static_cast<uintptr_t>(n) << 1 | 1);
}
inline bool fits_fixnum(int64_t n) { return n >= kFixMin && n <= kFixMax; }

inline Tag tag_of(Value v) { return v->tag; }  // v must not be a fixnum
inline bool has_tag(Value v, Tag t) { return !is_fixnum(v) && v->tag == t; }
inline bool truthy(Value v) { return v != &kFalse; }

// ---- Heap objects -------------------------------------------------------------------------

struct String : Obj {  // noscan; aux = length; the bytes follow (NUL-terminated)
  char* data() { return reinterpret_cast<char*>(this + 1); }
  std::string_view view() { return {data(), aux}; }
};

struct Pair : Obj {  // aux = source line (0: made at run time)
  ref<Obj> car, cdr;
  Pair(Value a, Value d, uint32_t line) : Obj{Tag::kPair, line}, car(a), cdr(d) {}
  using gc_fields = heap::fields<&Pair::car, &Pair::cdr>;
};

struct Flonum : Obj {  // noscan
  double d;
};

enum class Special : uint32_t {
  kNone, kQuote, kIf, kDefine, kSet, kLambda, kBegin, kLet, kLetStar, kLetrec, kCond, kAnd, kOr,
  kWhen, kUnless, kElse, kArrow,
};

struct Symbol : Obj {  // aux = Special; the global value lives in the symbol
  ref<String> name;
  ref<Obj> value;       // kUnbound until defined at top level
  ref<Symbol> next;     // the symbol table's hash chain
  explicit Symbol(String* n) : Obj{Tag::kSymbol, 0}, name(n), value(&kUnbound) {}
  using gc_fields = heap::fields<&Symbol::name, &Symbol::value, &Symbol::next>;
};

struct Vector : Obj {  // aux unused; len elements in items
  uint64_t len;
  ref<ref<Obj>> items;
  using gc_fields = heap::fields<&Vector::items>;
};

// One frame of a lexical environment: parallel lists of names and values. A null Env is
// the global environment (values in the symbols).
struct Env : Obj {
  ref<Obj> names, values;
  ref<Env> parent;
  Env(Value n, Value v, Env* p) : Obj{Tag::kEnv, 0}, names(n), values(v), parent(p) {}
  using gc_fields = heap::fields<&Env::names, &Env::values, &Env::parent>;
};

struct Closure : Obj {  // aux = required parameters; rest != 0: the last name takes the rest
  ref<Obj> names;       // the parameters as a proper list (a rest parameter last)
  ref<Obj> body;        // a non-empty list of expressions
  ref<Env> env;
  ref<Symbol> name;     // for messages; null for an anonymous lambda
  uint64_t rest;
  using gc_fields = heap::fields<&Closure::names, &Closure::body, &Closure::env, &Closure::name>;
};

struct Args;
using PrimFn = Value (*)(const Args& args);
struct Primitive : Obj {  // noscan
  PrimFn fn;
  const char* name;
  int32_t min_args, max_args;  // max -1: variadic
};

struct Fiber : Obj {  // a spawned thunk: aux = 1 once joined
  ref<Obj> thunk;
  ref<Obj> result;
  void* handle;  // the scheduler's gc_fiber (malloc'd by the scheduler: not traced)
  using gc_fields = heap::fields<&Fiber::thunk, &Fiber::result>;
};

struct SymbolTable : Obj {
  uint64_t count, nbuckets;
  ref<ref<Symbol>> buckets;
  using gc_fields = heap::fields<&SymbolTable::buckets>;
};

// ---- Accessors --------------------------------------------------------------------------------

inline bool is_pair(Value v) { return has_tag(v, Tag::kPair); }
inline bool is_symbol(Value v) { return has_tag(v, Tag::kSymbol); }
inline bool is_string(Value v) { return has_tag(v, Tag::kString); }
inline bool is_flonum(Value v) { return has_tag(v, Tag::kFlonum); }
inline bool is_number(Value v) { return is_fixnum(v) || is_flonum(v); }
inline Pair* as_pair(Value v) { return static_cast<Pair*>(v); }
inline Symbol* as_symbol(Value v) { return static_cast<Symbol*>(v); }
inline String* as_string(Value v) { return static_cast<String*>(v); }
inline Value car(Value v) { return as_pair(v)->car; }
inline Value cdr(Value v) { return as_pair(v)->cdr; }

// ---- Constructors (objects.cc) ---------------------------------------------------------------

Value cons(Value a, Value d, uint32_t line = 0);
Value make_flonum(double d);
String* make_string(std::string_view s);
Value make_vector(uint64_t n, Value fill);
Value make_primitive(const char* name, PrimFn fn, int min_args, int max_args);

}  // namespace scheme
