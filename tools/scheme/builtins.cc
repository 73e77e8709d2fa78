// The primitive procedures: numbers, equivalence, pairs and lists, symbols and strings,
// vectors, control (apply, map, for-each, error, exit), output, and the collector.
// Fibers (spawn, join, yield) are in fibers.cc.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "interp.h"

namespace scheme {

void define_primitive(const char* name, PrimFn fn, int min_args, int max_args) {
  intern(name)->value = make_primitive(name, fn, min_args, max_args);
}

void type_error(const Args& a, int i, const char* expected) {
  std::string got = to_write(a[i]);
  if (got.size() > 60) got = got.substr(0, 57) + "...";
  fail("type error: %s: argument %d must be %s, got %s", a.prim->name, i + 1, expected,
       got.c_str());
}

int64_t list_length(Value list) {
  int64_t n = 0;
  for (; is_pair(list); list = cdr(list)) n++;
  return list == nil() ? n : -1;
}

namespace {

// ---- Numbers ----------------------------------------------------------------------------------

double num(const Args& a, int i) {
  Value v = a[i];
  if (is_fixnum(v)) return double(fixval(v));
  if (is_flonum(v)) return static_cast<Flonum*>(v)->d;
  type_error(a, i, "a number");
}
void check_num(const Args& a, int i) {
  if (!is_number(a[i])) type_error(a, i, "a number");
}
int64_t integer(const Args& a, int i) {
  if (!is_fixnum(a[i])) type_error(a, i, "an integer");
  return fixval(a[i]);
}
Value make_int(__int128 n) {
  if (n >= kFixMin && n <= kFixMax) return fixnum(int64_t(n));
  return make_flonum(double(n));
}

enum class Op { kAdd, kSub, kMul };
Value arith(const Args& a, Op op) {
  if (a.n == 0) return fixnum(op == Op::kMul ? 1 : 0);
  Value acc = a[0];
  check_num(a, 0);
  if (a.n == 1 && op == Op::kSub) {
    if (is_fixnum(acc)) return make_int(-static_cast<__int128>(fixval(acc)));
    return make_flonum(-num(a, 0));
  }
  for (int i = 1; i < a.n; i++) {
    check_num(a, i);
    Value b = a[i];
    if (is_fixnum(acc) && is_fixnum(b)) {
      __int128 x = fixval(acc), y = fixval(b);
      acc = make_int(op == Op::kAdd ? x + y : op == Op::kSub ? x - y : x * y);
    } else {
      double x = is_fixnum(acc) ? double(fixval(acc)) : static_cast<Flonum*>(acc)->d;
      double y = num(a, i);
      acc = make_flonum(op == Op::kAdd ? x + y : op == Op::kSub ? x - y : x * y);
    }
  }
  return acc;
}

Value divide(const Args& a) {
  for (int i = 0; i < a.n; i++) check_num(a, i);
  if (a.n == 1) {
    if (num(a, 0) == 0 && is_fixnum(a[0])) fail("division by zero: (/ 0)");
    return make_flonum(1.0 / num(a, 0));
  }
  Value acc = a[0];
  for (int i = 1; i < a.n; i++) {
    Value b = a[i];
    if (is_fixnum(acc) && is_fixnum(b)) {
      if (fixval(b) == 0) fail("division by zero: /");
      if (fixval(acc) % fixval(b) == 0) {
        acc = make_int(static_cast<__int128>(fixval(acc)) / fixval(b));
        continue;
      }
    }
    double x = is_fixnum(acc) ? double(fixval(acc)) : static_cast<Flonum*>(acc)->d;
    acc = make_flonum(x / num(a, i));
  }
  return acc;
}

enum class Cmp { kEq, kLt, kGt, kLe, kGe };
Value compare(const Args& a, Cmp c) {
  for (int i = 0; i < a.n; i++) check_num(a, i);
  for (int i = 0; i + 1 < a.n; i++) {
    bool ok;
    if (is_fixnum(a[i]) && is_fixnum(a[i + 1])) {
      int64_t x = fixval(a[i]), y = fixval(a[i + 1]);
      ok = c == Cmp::kEq ? x == y : c == Cmp::kLt ? x < y : c == Cmp::kGt ? x > y
         : c == Cmp::kLe ? x <= y : x >= y;
    } else {
      double x = num(a, i), y = num(a, i + 1);
      ok = c == Cmp::kEq ? x == y : c == Cmp::kLt ? x < y : c == Cmp::kGt ? x > y
         : c == Cmp::kLe ? x <= y : x >= y;
    }
    if (!ok) return boolean(false);
  }
  return boolean(true);
}

enum class IntOp { kQuotient, kRemainder, kModulo };
Value int_div(const Args& a, IntOp op) {
  int64_t x = integer(a, 0), y = integer(a, 1);
  if (y == 0) fail("division by zero: %s", a.prim->name);
  if (op == IntOp::kQuotient) return make_int(static_cast<__int128>(x) / y);
  int64_t r = x % y;
  if (op == IntOp::kModulo && r != 0 && ((r < 0) != (y < 0))) r += y;
  return fixnum(r);
}

Value min_max(const Args& a, bool is_max) {
  bool inexact = false;
  for (int i = 0; i < a.n; i++) {
    check_num(a, i);
    inexact |= is_flonum(a[i]);
  }
  int best = 0;
  for (int i = 1; i < a.n; i++)
    if (is_max ? num(a, i) > num(a, best) : num(a, i) < num(a, best)) best = i;
  return inexact && is_fixnum(a[best]) ? make_flonum(num(a, best)) : a[best];
}

Value round_op(const Args& a, double (*f)(double)) {
  check_num(a, 0);
  if (is_fixnum(a[0])) return a[0];
  return make_flonum(f(num(a, 0)));
}

// ---- Equivalence ------------------------------------------------------------------------------

bool eqv(Value x, Value y) {
  if (x == y) return true;
  if (is_flonum(x) && is_flonum(y)) return static_cast<Flonum*>(x)->d == static_cast<Flonum*>(y)->d;
  return false;
}

bool equal(Value x, Value y, int depth = 0) {
  if (depth > 100000) fail("equal?: structure too deep");
  for (;;) {
    if (eqv(x, y)) return true;
    if (is_fixnum(x) || is_fixnum(y) || x->tag != y->tag) return false;
    switch (x->tag) {
      case Tag::kString: return as_string(x)->view() == as_string(y)->view();
      case Tag::kVector: {
        auto *vx = static_cast<Vector*>(x), *vy = static_cast<Vector*>(y);
        if (vx->len != vy->len) return false;
        for (uint64_t i = 0; i < vx->len; i++)
          if (!equal(vx->items[i], vy->items[i], depth + 1)) return false;
        return true;
      }
      case Tag::kPair:
        if (!equal(car(x), car(y), depth + 1)) return false;
        x = cdr(x);
        y = cdr(y);
        continue;
      default: return false;
    }
  }
}

// ---- Lists ------------------------------------------------------------------------------------

Value pair_arg(const Args& a, int i) {
  if (!is_pair(a[i])) type_error(a, i, "a pair");
  return a[i];
}

Value list_arg(const Args& a, int i) {
  if (list_length(a[i]) < 0) type_error(a, i, "a list");
  return a[i];
}

// Builds a list front to back.
struct ListBuilder {
  Value head = nil(), tail = nil();
  void add(Value v) {
    Value p = cons(v, nil());
    if (tail == nil()) head = p;
    else as_pair(tail)->cdr = p;
    tail = p;
  }
};

Value cxr(const Args& a, const char* path) {  // path applied right to left, e.g. "ad" = cadr
  Value v = a[0];
  for (int i = int(std::strlen(path)) - 1; i >= 0; i--) {
    if (!is_pair(v)) type_error(a, 0, "a list with that structure");
    v = path[i] == 'a' ? car(v) : cdr(v);
  }
  return v;
}

Value member_op(const Args& a, bool use_equal) {
  list_arg(a, 1);
  for (Value l = a[1]; is_pair(l); l = cdr(l))
    if (use_equal ? equal(a[0], car(l)) : eqv(a[0], car(l))) return l;
  return boolean(false);
}

Value assoc_op(const Args& a, bool use_equal) {
  list_arg(a, 1);
  for (Value l = a[1]; is_pair(l); l = cdr(l)) {
    Value e = car(l);
    if (!is_pair(e)) type_error(a, 1, "an association list");
    if (use_equal ? equal(a[0], car(e)) : eqv(a[0], car(e))) return e;
  }
  return boolean(false);
}

// (map f l1 l2 ...) and (for-each f l1 ...): stop at the shortest list.
Value map_op(const Args& a, bool collect) {
  for (int i = 1; i < a.n; i++) list_arg(a, i);
  ListBuilder out;
  constexpr int kMaxLists = 8;
  if (a.n - 1 > kMaxLists) fail("%s: at most %d lists", a.prim->name, kMaxLists);
  Value ls[kMaxLists];
  for (int i = 1; i < a.n; i++) ls[i - 1] = a[i];
  for (;;) {
    ListBuilder args;
    for (int i = 0; i < a.n - 1; i++) {
      if (!is_pair(ls[i])) return collect ? out.head : &kUnspecified;
      args.add(car(ls[i]));
      ls[i] = cdr(ls[i]);
    }
    Value v = apply(a[0], args.head, a.cx);
    if (collect) out.add(v);
  }
}

// ---- Strings and symbols --------------------------------------------------------------------

String* str_arg(const Args& a, int i) {
  if (!is_string(a[i])) type_error(a, i, "a string");
  return as_string(a[i]);
}

// ---- Vectors ----------------------------------------------------------------------------------

Vector* vec_arg(const Args& a, int i) {
  if (!has_tag(a[i], Tag::kVector)) type_error(a, i, "a vector");
  return static_cast<Vector*>(a[i]);
}

uint64_t index_arg(const Args& a, int i, uint64_t bound) {
  int64_t k = integer(a, i);
  if (k < 0 || uint64_t(k) >= bound)
    fail("index error: %s: index %lld is out of range (size %llu)", a.prim->name,
         static_cast<long long>(k), static_cast<unsigned long long>(bound));
  return uint64_t(k);
}

}  // namespace

void init_builtins() {
  // Numbers.
  define_primitive("+", [](const Args& a) { return arith(a, Op::kAdd); }, 0, -1);
  define_primitive("-", [](const Args& a) { return arith(a, Op::kSub); }, 1, -1);
  define_primitive("*", [](const Args& a) { return arith(a, Op::kMul); }, 0, -1);
  define_primitive("/", divide, 1, -1);
  define_primitive("=", [](const Args& a) { return compare(a, Cmp::kEq); }, 1, -1);
  define_primitive("<", [](const Args& a) { return compare(a, Cmp::kLt); }, 1, -1);
  define_primitive(">", [](const Args& a) { return compare(a, Cmp::kGt); }, 1, -1);
  define_primitive("<=", [](const Args& a) { return compare(a, Cmp::kLe); }, 1, -1);
  define_primitive(">=", [](const Args& a) { return compare(a, Cmp::kGe); }, 1, -1);
  define_primitive("quotient", [](const Args& a) { return int_div(a, IntOp::kQuotient); }, 2, 2);
  define_primitive("remainder", [](const Args& a) { return int_div(a, IntOp::kRemainder); }, 2, 2);
  define_primitive("modulo", [](const Args& a) { return int_div(a, IntOp::kModulo); }, 2, 2);
  define_primitive("min", [](const Args& a) { return min_max(a, false); }, 1, -1);
  define_primitive("max", [](const Args& a) { return min_max(a, true); }, 1, -1);
  define_primitive("abs", [](const Args& a) -> Value {
    check_num(a, 0);
    if (is_fixnum(a[0])) return make_int(fixval(a[0]) < 0 ? -__int128(fixval(a[0])) : fixval(a[0]));
    return make_flonum(std::fabs(num(a, 0)));
  }, 1, 1);
  define_primitive("number?", [](const Args& a) { return boolean(is_number(a[0])); }, 1, 1);
  define_primitive("integer?", [](const Args& a) {
    return boolean(is_fixnum(a[0]) || (is_flonum(a[0]) && std::trunc(num(a, 0)) == num(a, 0)));
  }, 1, 1);
  define_primitive("exact?", [](const Args& a) { check_num(a, 0); return boolean(is_fixnum(a[0])); }, 1, 1);
  define_primitive("inexact?", [](const Args& a) { check_num(a, 0); return boolean(is_flonum(a[0])); }, 1, 1);
  define_primitive("zero?", [](const Args& a) { return boolean(num(a, 0) == 0); }, 1, 1);
  define_primitive("positive?", [](const Args& a) { return boolean(num(a, 0) > 0); }, 1, 1);
  define_primitive("negative?", [](const Args& a) { return boolean(num(a, 0) < 0); }, 1, 1);
  define_primitive("even?", [](const Args& a) { return boolean(integer(a, 0) % 2 == 0); }, 1, 1);
  define_primitive("odd?", [](const Args& a) { return boolean(integer(a, 0) % 2 != 0); }, 1, 1);
  define_primitive("exact->inexact", [](const Args& a) { return make_flonum(num(a, 0)); }, 1, 1);
  define_primitive("inexact->exact", [](const Args& a) -> Value {
    double d = num(a, 0);
    if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > double(kFixMax))
      fail("type error: inexact->exact: %s has no exact integer value", to_write(a[0]).c_str());
    return fixnum(int64_t(d));
  }, 1, 1);
  define_primitive("floor", [](const Args& a) { return round_op(a, std::floor); }, 1, 1);
  define_primitive("ceiling", [](const Args& a) { return round_op(a, std::ceil); }, 1, 1);
  define_primitive("truncate", [](const Args& a) { return round_op(a, std::trunc); }, 1, 1);
  define_primitive("round", [](const Args& a) { return round_op(a, std::nearbyint); }, 1, 1);
  define_primitive("sqrt", [](const Args& a) -> Value {
    double d = num(a, 0);
    if (is_fixnum(a[0]) && d >= 0) {
      int64_t r = int64_t(std::sqrt(d));
      if (r * r == fixval(a[0])) return fixnum(r);
    }
    return make_flonum(std::sqrt(d));
  }, 1, 1);
  define_primitive("expt", [](const Args& a) -> Value {
    if (is_fixnum(a[0]) && is_fixnum(a[1]) && fixval(a[1]) >= 0) {
      __int128 r = 1, b = fixval(a[0]);
      for (int64_t e = fixval(a[1]); e > 0; e--) {
        r *= b;
        if (r > kFixMax || r < kFixMin) return make_flonum(std::pow(num(a, 0), num(a, 1)));
      }
      return fixnum(int64_t(r));
    }
    return make_flonum(std::pow(num(a, 0), num(a, 1)));
  }, 2, 2);
  define_primitive("number->string", [](const Args& a) -> Value {
    check_num(a, 0);
    return make_string(to_display(a[0]));
  }, 1, 1);
  define_primitive("string->number", [](const Args& a) -> Value {
    std::string s(str_arg(a, 0)->view());
    if (s.empty()) return boolean(false);
    char* end = nullptr;
    long long n = std::strtoll(s.c_str(), &end, 10);
    if (*end == 0 && fits_fixnum(n)) return fixnum(n);
    double d = std::strtod(s.c_str(), &end);
    if (*end == 0) return make_flonum(d);
    return boolean(false);
  }, 1, 1);

  // Equivalence and booleans.
  define_primitive("not", [](const Args& a) { return boolean(!truthy(a[0])); }, 1, 1);
  define_primitive("eq?", [](const Args& a) { return boolean(a[0] == a[1]); }, 2, 2);
  define_primitive("eqv?", [](const Args& a) { return boolean(eqv(a[0], a[1])); }, 2, 2);
  define_primitive("equal?", [](const Args& a) { return boolean(equal(a[0], a[1])); }, 2, 2);
  define_primitive("boolean?", [](const Args& a) {
    return boolean(a[0] == boolean(true) || a[0] == boolean(false));
  }, 1, 1);

  // Pairs and lists.
  define_primitive("cons", [](const Args& a) { return cons(a[0], a[1]); }, 2, 2);
  define_primitive("car", [](const Args& a) { return car(pair_arg(a, 0)); }, 1, 1);
  define_primitive("cdr", [](const Args& a) { return cdr(pair_arg(a, 0)); }, 1, 1);
  define_primitive("set-car!", [](const Args& a) -> Value {
    as_pair(pair_arg(a, 0))->car = a[1];
    return &kUnspecified;
  }, 2, 2);
  define_primitive("set-cdr!", [](const Args& a) -> Value {
    as_pair(pair_arg(a, 0))->cdr = a[1];
    return &kUnspecified;
  }, 2, 2);
  define_primitive("caar", [](const Args& a) { return cxr(a, "aa"); }, 1, 1);
  define_primitive("cadr", [](const Args& a) { return cxr(a, "ad"); }, 1, 1);
  define_primitive("cdar", [](const Args& a) { return cxr(a, "da"); }, 1, 1);
  define_primitive("cddr", [](const Args& a) { return cxr(a, "dd"); }, 1, 1);
  define_primitive("caddr", [](const Args& a) { return cxr(a, "add"); }, 1, 1);
  define_primitive("cdddr", [](const Args& a) { return cxr(a, "ddd"); }, 1, 1);
  define_primitive("cadddr", [](const Args& a) { return cxr(a, "addd"); }, 1, 1);
  define_primitive("null?", [](const Args& a) { return boolean(a[0] == nil()); }, 1, 1);
  define_primitive("pair?", [](const Args& a) { return boolean(is_pair(a[0])); }, 1, 1);
  define_primitive("list?", [](const Args& a) { return boolean(list_length(a[0]) >= 0); }, 1, 1);
  define_primitive("list", [](const Args& a) {
    Value l = nil();
    for (int i = a.n - 1; i >= 0; i--) l = cons(a[i], l);
    return l;
  }, 0, -1);
  define_primitive("length", [](const Args& a) { return fixnum(list_length(list_arg(a, 0))); }, 1, 1);
  define_primitive("append", [](const Args& a) -> Value {
    if (a.n == 0) return nil();
    ListBuilder b;
    for (int i = 0; i + 1 < a.n; i++) {
      list_arg(a, i);
      for (Value l = a[i]; is_pair(l); l = cdr(l)) b.add(car(l));
    }
    if (b.tail == nil()) return a[a.n - 1];
    as_pair(b.tail)->cdr = a[a.n - 1];
    return b.head;
  }, 0, -1);
  define_primitive("reverse", [](const Args& a) {
    Value r = nil();
    for (Value l = list_arg(a, 0); is_pair(l); l = cdr(l)) r = cons(car(l), r);
    return r;
  }, 1, 1);
  define_primitive("list-tail", [](const Args& a) {
    Value l = a[0];
    for (int64_t k = integer(a, 1); k > 0; k--) {
      if (!is_pair(l)) fail("index error: list-tail: the list is too short");
      l = cdr(l);
    }
    return l;
  }, 2, 2);
  define_primitive("list-ref", [](const Args& a) {
    Value l = a[0];
    int64_t k = integer(a, 1);
    for (; k > 0 && is_pair(l); k--) l = cdr(l);
    if (k < 0 || !is_pair(l)) fail("index error: list-ref: index %lld is out of range",
                                   static_cast<long long>(integer(a, 1)));
    return car(l);
  }, 2, 2);
  define_primitive("memq", [](const Args& a) { return member_op(a, false); }, 2, 2);
  define_primitive("memv", [](const Args& a) { return member_op(a, false); }, 2, 2);
  define_primitive("member", [](const Args& a) { return member_op(a, true); }, 2, 2);
  define_primitive("assq", [](const Args& a) { return assoc_op(a, false); }, 2, 2);
  define_primitive("assv", [](const Args& a) { return assoc_op(a, false); }, 2, 2);
  define_primitive("assoc", [](const Args& a) { return assoc_op(a, true); }, 2, 2);

  // Symbols and strings.
  define_primitive("symbol?", [](const Args& a) { return boolean(is_symbol(a[0])); }, 1, 1);
  define_primitive("string?", [](const Args& a) { return boolean(is_string(a[0])); }, 1, 1);
  define_primitive("symbol->string", [](const Args& a) -> Value {
    if (!is_symbol(a[0])) type_error(a, 0, "a symbol");
    return make_string(as_symbol(a[0])->name->view());
  }, 1, 1);
  define_primitive("string->symbol", [](const Args& a) -> Value {
    return intern(str_arg(a, 0)->view());
  }, 1, 1);
  define_primitive("string-length", [](const Args& a) { return fixnum(str_arg(a, 0)->aux); }, 1, 1);
  define_primitive("string-append", [](const Args& a) -> Value {
    std::string s;
    for (int i = 0; i < a.n; i++) s += str_arg(a, i)->view();
    return make_string(s);
  }, 0, -1);
  define_primitive("substring", [](const Args& a) -> Value {
    String* s = str_arg(a, 0);
    uint64_t start = index_arg(a, 1, uint64_t(s->aux) + 1);
    uint64_t end = a.n > 2 ? index_arg(a, 2, uint64_t(s->aux) + 1) : s->aux;
    if (end < start) fail("index error: substring: end %llu is before start %llu",
                          (unsigned long long)end, (unsigned long long)start);
    return make_string(s->view().substr(start, end - start));
  }, 2, 3);
  define_primitive("string=?", [](const Args& a) {
    return boolean(str_arg(a, 0)->view() == str_arg(a, 1)->view());
  }, 2, 2);
  define_primitive("string<?", [](const Args& a) {
    return boolean(str_arg(a, 0)->view() < str_arg(a, 1)->view());
  }, 2, 2);

  // Vectors.
  define_primitive("vector?", [](const Args& a) { return boolean(has_tag(a[0], Tag::kVector)); }, 1, 1);
  define_primitive("make-vector", [](const Args& a) -> Value {
    int64_t n = integer(a, 0);
    if (n < 0) type_error(a, 0, "a non-negative integer");
    return make_vector(uint64_t(n), a.n > 1 ? a[1] : fixnum(0));
  }, 1, 2);
  define_primitive("vector", [](const Args& a) -> Value {
    Value v = make_vector(uint64_t(a.n), fixnum(0));
    for (int i = 0; i < a.n; i++) static_cast<Vector*>(v)->items[i] = a[i];
    return v;
  }, 0, -1);
  define_primitive("vector-length", [](const Args& a) { return fixnum(int64_t(vec_arg(a, 0)->len)); }, 1, 1);
  define_primitive("vector-ref", [](const Args& a) -> Value {
    Vector* v = vec_arg(a, 0);
    return v->items[index_arg(a, 1, v->len)];
  }, 2, 2);
  define_primitive("vector-set!", [](const Args& a) -> Value {
    Vector* v = vec_arg(a, 0);
    v->items[index_arg(a, 1, v->len)] = a[2];
    return &kUnspecified;
  }, 3, 3);
  define_primitive("vector-fill!", [](const Args& a) -> Value {
    Vector* v = vec_arg(a, 0);
    for (uint64_t i = 0; i < v->len; i++) v->items[i] = a[1];
    return &kUnspecified;
  }, 2, 2);
  define_primitive("vector->list", [](const Args& a) {
    Vector* v = vec_arg(a, 0);
    Value l = nil();
    for (uint64_t i = v->len; i > 0; i--) l = cons(v->items[i - 1], l);
    return l;
  }, 1, 1);
  define_primitive("list->vector", [](const Args& a) -> Value {
    int64_t n = list_length(list_arg(a, 0));
    Value v = make_vector(uint64_t(n), fixnum(0));
    int64_t i = 0;
    for (Value l = a[0]; is_pair(l); l = cdr(l)) static_cast<Vector*>(v)->items[i++] = car(l);
    return v;
  }, 1, 1);

  // Control.
  define_primitive("procedure?", [](const Args& a) {
    return boolean(has_tag(a[0], Tag::kClosure) || has_tag(a[0], Tag::kPrimitive));
  }, 1, 1);
  define_primitive("apply", [](const Args& a) -> Value {
    // (apply f a b ... list): the last argument is spread.
    if (list_length(a[a.n - 1]) < 0) type_error(a, a.n - 1, "a list");
    Value args = a[a.n - 1];
    for (int i = a.n - 2; i >= 1; i--) args = cons(a[i], args);
    return apply(a[0], args, a.cx);
  }, 2, -1);
  define_primitive("map", [](const Args& a) { return map_op(a, true); }, 2, -1);
  define_primitive("for-each", [](const Args& a) { return map_op(a, false); }, 2, -1);
  define_primitive("error", [](const Args& a) -> Value {
    std::string msg = "error: " + to_display(a[0]);
    for (int i = 1; i < a.n; i++) msg += " " + to_write(a[i]);
    fail("%s", msg.c_str());
  }, 1, -1);
  define_primitive("exit", [](const Args& a) -> Value {
    std::fflush(stdout);
    std::_Exit(a.n ? int(integer(a, 0)) : 0);
  }, 0, 1);

  // Output.
  define_primitive("display", [](const Args& a) -> Value {
    write_out(to_display(a[0]));
    return &kUnspecified;
  }, 1, 1);
  define_primitive("write", [](const Args& a) -> Value {
    write_out(to_write(a[0]));
    return &kUnspecified;
  }, 1, 1);
  define_primitive("newline", [](const Args&) -> Value {
    write_out("\n");
    return &kUnspecified;
  }, 0, 0);
}

}  // namespace scheme
