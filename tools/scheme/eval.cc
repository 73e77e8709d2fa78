// The evaluator: an AST walker over the data the reader produced.
//
// 1. eval(x, env) loops instead of recursing wherever the value of x is the value of a
//    subexpression in tail position (if branches, the last expression of a body, cond, and,
//    or, when, unless, let bodies, and every closure call): the loop replaces x and env and
//    goes round again, so tail calls run in constant C++ stack (proper tail calls).
// 2. A closure call evaluates its arguments into a fresh list, which becomes the value list
//    of the new environment frame (Env: parallel lists of names and values); the names are
//    the closure's parameter list itself, so a call allocates its arguments and one frame.
// 3. A primitive call evaluates its arguments into an array on the C++ stack.
// 4. Non-tail calls recurse in C++. Each fiber has a stack budget (Ctx); eval checks it on
//    entry and reports "recursion too deep" instead of overflowing the stack.
// 5. Errors carry the line of the innermost expression: eval catches a SchemeError whose
//    line is still unknown, fills in the line it was at, and rethrows (zero cost until then).
//
// Heap pointers in C++ locals need no care: stacks are scanned conservatively. Every store
// into a heap object goes through a heap::ref (the write barrier).
#include <alloca.h>

#include <cstdarg>
#include <cstdio>

#include "interp.h"

namespace scheme {

Symbol* g_sym_quote;

namespace {

Symbol *g_sym_else, *g_sym_arrow, *g_sym_define, *g_sym_lambda;

constexpr int kStackArgs = 6;  // primitive calls with more arguments use call_big
constexpr int kMaxArgs = 100000;

std::string brief(Value v) {
  std::string s = to_write(v);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

inline void check_stack(Ctx* cx) {
  if (__builtin_expect(static_cast<char*>(__builtin_frame_address(0)) < cx->stack_limit, 0))
    fail("recursion too deep: the stack is exhausted");
}

[[noreturn]] void bad_form(const char* form, Value x) {
  fail("syntax error: bad %s form: %s", form, brief(x).c_str());
}

Pair* lookup_cell(Symbol* sym, Env* env) {
  for (Env* e = env; e; e = e->parent) {
    Value v = e->values;
    for (Value n = e->names; is_pair(n); n = cdr(n), v = cdr(v))
      if (car(n) == sym) return as_pair(v);
  }
  return nullptr;
}

Value lookup(Symbol* sym, Env* env) {
  Value v;
  if (Pair* cell = lookup_cell(sym, env)) v = cell->car;
  else v = sym->value;
  if (__builtin_expect(v == &kUnbound, 0))
    fail("unbound variable: %s", std::string(sym->name->view()).c_str());
  return v;
}

void define_in(Env* env, Symbol* sym, Value v) {
  if (!env) {
    sym->value = v;
    return;
  }
  Value vals = env->values;
  for (Value n = env->names; is_pair(n); n = cdr(n), vals = cdr(vals))
    if (car(n) == sym) {
      as_pair(vals)->car = v;
      return;
    }
  env->names = cons(sym, env->names);
  env->values = cons(v, env->values);
}

Value make_closure(Value params, Value body, Env* env, Symbol* name, Value form) {
  if (!is_pair(body)) bad_form("lambda (no body)", form);
  uint32_t nreq = 0;
  Value p = params;
  for (; is_pair(p); p = cdr(p)) {
    if (!is_symbol(car(p))) bad_form("lambda (a parameter is not a symbol)", form);
    nreq++;
  }
  Value names = params;
  bool rest = false;
  if (p != nil()) {  // (a b . rest) or a lone symbol: copy into a proper list
    if (!is_symbol(p)) bad_form("lambda", form);
    rest = true;
    Value copy = cons(p, nil());
    Value items[64];
    if (nreq > 64) bad_form("lambda (too many parameters before a rest parameter)", form);
    uint32_t i = 0;
    for (Value q = params; is_pair(q); q = cdr(q)) items[i++] = car(q);
    while (i > 0) copy = cons(items[--i], copy);
    names = copy;
  }
  Closure* c = heap::make<Closure>();
  c->tag = Tag::kClosure;
  c->aux = nreq;
  c->rest = rest;
  c->names = names;
  c->body = body;
  c->env = env;
  c->name = name;
  return c;
}

std::string proc_name(Closure* c) {
  return c->name ? std::string(c->name->name->view()) : std::string("#<procedure>");
}

// A new frame binding c's parameters to args (a fresh list, which it may reuse).
Env* bind(Closure* c, Value args) {
  uint32_t nreq = c->aux;
  int64_t n = 0;
  Value last_req = nil();
  for (Value a = args; is_pair(a); a = cdr(a)) {
    if (++n == nreq) last_req = a;
  }
  if (n < nreq || (!c->rest && n > nreq))
    fail("arity error: %s expects %s%u argument%s, got %lld", proc_name(c).c_str(),
         c->rest ? "at least " : "", nreq, nreq == 1 ? "" : "s", static_cast<long long>(n));
  if (c->rest) {
    if (nreq == 0) {
      args = cons(args, nil());
    } else {
      Pair* lr = as_pair(last_req);
      lr->cdr = cons(lr->cdr, nil());
    }
  }
  return heap::make<Env>(c->names, args, c->env);
}

Value call_primitive(Primitive* pr, Value* argv, int n, Ctx* cx) {
  if (n < pr->min_args || (pr->max_args >= 0 && n > pr->max_args)) {
    if (pr->min_args == pr->max_args)
      fail("arity error: %s expects %d argument%s, got %d", pr->name, pr->min_args,
           pr->min_args == 1 ? "" : "s", n);
    if (pr->max_args < 0)
      fail("arity error: %s expects at least %d argument%s, got %d", pr->name, pr->min_args,
           pr->min_args == 1 ? "" : "s", n);
    fail("arity error: %s expects %d to %d arguments, got %d", pr->name, pr->min_args,
         pr->max_args, n);
  }
  return pr->fn(Args{argv, n, pr, cx});
}

// A primitive call with many arguments: the array lives in this frame only, so a loop of
// such calls in tail position does not grow the stack.
[[gnu::noinline]] Value call_big(Primitive* pr, Value list, int n, Env* env, bool evaluate,
                                 Ctx* cx) {
  if (n > kMaxArgs) fail("too many arguments (%d) in a call of %s", n, pr->name);
  auto* argv = static_cast<Value*>(alloca(sizeof(Value) * size_t(n)));
  int i = 0;
  for (Value a = list; is_pair(a); a = cdr(a))
    argv[i++] = evaluate ? eval(car(a), env, cx) : car(a);
  return call_primitive(pr, argv, n, cx);
}

Value eval_loop(Value x, Env* env, Ctx* cx, int& line);

}  // namespace

void fail(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw SchemeError{buf, -1};
}

void fail_at(int line, std::string message) { throw SchemeError{std::move(message), line}; }

void init_eval() {
  struct {
    const char* name;
    Special sf;
  } forms[] = {
      {"quote", Special::kQuote},   {"if", Special::kIf},         {"define", Special::kDefine},
      {"set!", Special::kSet},      {"lambda", Special::kLambda}, {"begin", Special::kBegin},
      {"let", Special::kLet},       {"let*", Special::kLetStar},  {"letrec", Special::kLetrec},
      {"letrec*", Special::kLetrec}, {"cond", Special::kCond},    {"and", Special::kAnd},
      {"or", Special::kOr},         {"when", Special::kWhen},     {"unless", Special::kUnless},
  };
  for (auto& f : forms) intern(f.name)->aux = static_cast<uint32_t>(f.sf);
  g_sym_quote = intern("quote");
  g_sym_else = intern("else");
  g_sym_arrow = intern("=>");
  g_sym_define = intern("define");
  g_sym_lambda = intern("lambda");
}

Value apply(Value f, Value args, Ctx* cx) {
  check_stack(cx);
  int64_t n = list_length(args);
  if (n < 0) fail("type error: apply: the arguments are not a proper list");
  if (has_tag(f, Tag::kPrimitive)) {
    auto* pr = static_cast<Primitive*>(f);
    if (n <= kStackArgs) {
      Value argv[kStackArgs];
      int i = 0;
      for (Value a = args; is_pair(a); a = cdr(a)) argv[i++] = car(a);
      return call_primitive(pr, argv, int(n), cx);
    }
    return call_big(pr, args, int(n), nullptr, false, cx);
  }
  if (has_tag(f, Tag::kClosure)) {
    auto* c = static_cast<Closure*>(f);
    // bind may reuse the list's last pairs: give it a copy.
    Value copy = nil(), tail = nil();
    for (Value a = args; is_pair(a); a = cdr(a)) {
      Value p = cons(car(a), nil());
      if (tail == nil()) copy = p;
      else as_pair(tail)->cdr = p;
      tail = p;
    }
    Env* env = bind(c, copy);
    Value body = c->body;
    for (; is_pair(cdr(body)); body = cdr(body)) eval(car(body), env, cx);
    return eval(car(body), env, cx);
  }
  fail("type error: not a procedure: %s", brief(f).c_str());
}

Value eval(Value x, Env* env, Ctx* cx) {
  check_stack(cx);
  int line = 0;
  try {
    return eval_loop(x, env, cx, line);
  } catch (SchemeError& e) {
    if (e.line < 0 && line > 0) e.line = line;
    throw;
  }
}

namespace {

// The body of eval; `line` follows the expression being evaluated, for error messages.
Value eval_loop(Value x, Env* env, Ctx* cx, int& line) {
  for (;;) {
    if (is_fixnum(x)) return x;
    switch (x->tag) {
      case Tag::kSymbol: return lookup(as_symbol(x), env);
      case Tag::kPair: break;
      case Tag::kNil: fail("syntax error: () is not an expression (quote it: '())");
      default: return x;  // self-evaluating
    }
    Pair* form = as_pair(x);
    if (form->aux) line = static_cast<int>(form->aux);
    Value op = form->car;
    Value rest = form->cdr;

    if (is_symbol(op) && op->aux != 0) {
      switch (static_cast<Special>(op->aux)) {
        case Special::kQuote:
          if (!is_pair(rest) || cdr(rest) != nil()) bad_form("quote", x);
          return car(rest);

        case Special::kIf: {
          int64_t n = list_length(rest);
          if (n != 2 && n != 3) bad_form("if", x);
          if (truthy(eval(car(rest), env, cx))) {
            x = car(cdr(rest));
          } else {
            Value e = cdr(cdr(rest));
            if (e == nil()) return &kUnspecified;
            x = car(e);
          }
          continue;
        }

        case Special::kDefine: {
          if (!is_pair(rest)) bad_form("define", x);
          Value target = car(rest);
          if (is_pair(target)) {  // (define (name . params) body...)
            if (!is_symbol(car(target))) bad_form("define", x);
            Symbol* name = as_symbol(car(target));
            define_in(env, name, make_closure(cdr(target), cdr(rest), env, name, x));
            return &kUnspecified;
          }
          if (!is_symbol(target)) bad_form("define (the name is not a symbol)", x);
          Value tail = cdr(rest);
          if (!is_pair(tail) || cdr(tail) != nil()) bad_form("define", x);
          Value v = eval(car(tail), env, cx);
          if (has_tag(v, Tag::kClosure) && !static_cast<Closure*>(v)->name)
            static_cast<Closure*>(v)->name = as_symbol(target);
          define_in(env, as_symbol(target), v);
          return &kUnspecified;
        }

        case Special::kSet: {
          if (list_length(rest) != 2 || !is_symbol(car(rest))) bad_form("set!", x);
          Symbol* sym = as_symbol(car(rest));
          Value v = eval(car(cdr(rest)), env, cx);
          if (Pair* cell = lookup_cell(sym, env)) {
            cell->car = v;
          } else {
            if (sym->value == &kUnbound)
              fail("unbound variable: %s (set! of an undefined variable)",
                   std::string(sym->name->view()).c_str());
            sym->value = v;
          }
          return &kUnspecified;
        }

        case Special::kLambda:
          if (!is_pair(rest)) bad_form("lambda", x);
          return make_closure(car(rest), cdr(rest), env, nullptr, x);

        case Special::kBegin:
          if (rest == nil()) return &kUnspecified;
          for (; is_pair(cdr(rest)); rest = cdr(rest)) eval(car(rest), env, cx);
          x = car(rest);
          continue;

        case Special::kLet: {
          if (!is_pair(rest)) bad_form("let", x);
          Symbol* loop_name = nullptr;
          if (is_symbol(car(rest))) {  // named let
            loop_name = as_symbol(car(rest));
            rest = cdr(rest);
            if (!is_pair(rest)) bad_form("let", x);
          }
          Value bindings = car(rest), body = cdr(rest);
          if (list_length(bindings) < 0 || !is_pair(body)) bad_form("let", x);
          Value names = nil(), values = nil(), ntail = nil(), vtail = nil();
          for (Value b = bindings; is_pair(b); b = cdr(b)) {
            Value bd = car(b);
            if (!is_pair(bd) || !is_symbol(car(bd)) || list_length(bd) != 2) bad_form("let", x);
            Value v = eval(car(cdr(bd)), env, cx);
            Value np = cons(car(bd), nil()), vp = cons(v, nil());
            if (ntail == nil()) names = np, values = vp;
            else as_pair(ntail)->cdr = np, as_pair(vtail)->cdr = vp;
            ntail = np;
            vtail = vp;
          }
          if (loop_name) {
            Env* frame = heap::make<Env>(nil(), nil(), env);
            Value c = make_closure(names, body, frame, loop_name, x);
            define_in(frame, loop_name, c);
            env = frame;
          }
          env = heap::make<Env>(names, values, env);
          for (; is_pair(cdr(body)); body = cdr(body)) eval(car(body), env, cx);
          x = car(body);
          continue;
        }

        case Special::kLetStar:
        case Special::kLetrec: {
          bool letrec = static_cast<Special>(op->aux) == Special::kLetrec;
          if (!is_pair(rest) || list_length(car(rest)) < 0 || !is_pair(cdr(rest)))
            bad_form(letrec ? "letrec" : "let*", x);
          Env* frame = heap::make<Env>(nil(), nil(), env);
          if (letrec)
            for (Value b = car(rest); is_pair(b); b = cdr(b)) {
              Value bd = car(b);
              if (!is_pair(bd) || !is_symbol(car(bd)) || list_length(bd) != 2)
                bad_form("letrec", x);
              define_in(frame, as_symbol(car(bd)), &kUnbound);
            }
          for (Value b = car(rest); is_pair(b); b = cdr(b)) {
            Value bd = car(b);
            if (!is_pair(bd) || !is_symbol(car(bd)) || list_length(bd) != 2) bad_form("let*", x);
            Value v = eval(car(cdr(bd)), frame, cx);
            if (has_tag(v, Tag::kClosure) && !static_cast<Closure*>(v)->name)
              static_cast<Closure*>(v)->name = as_symbol(car(bd));
            define_in(frame, as_symbol(car(bd)), v);
          }
          env = frame;
          Value body = cdr(rest);
          for (; is_pair(cdr(body)); body = cdr(body)) eval(car(body), env, cx);
          x = car(body);
          continue;
        }

        case Special::kCond: {
          bool chosen = false;
          for (Value cl = rest; is_pair(cl); cl = cdr(cl)) {
            Value clause = car(cl);
            if (!is_pair(clause)) bad_form("cond", x);
            Value test = car(clause), body = cdr(clause);
            Value t;
            if (test == g_sym_else) {
              if (cdr(cl) != nil()) bad_form("cond (else is not the last clause)", x);
              t = &kTrue;
            } else {
              t = eval(test, env, cx);
            }
            if (!truthy(t)) continue;
            if (body == nil()) return t;
            if (car(body) == g_sym_arrow) {  // (test => receiver)
              if (!is_pair(cdr(body))) bad_form("cond", x);
              Value f = eval(car(cdr(body)), env, cx);
              return apply(f, cons(t, nil()), cx);
            }
            for (; is_pair(cdr(body)); body = cdr(body)) eval(car(body), env, cx);
            x = car(body);
            chosen = true;
            break;
          }
          if (!chosen) return &kUnspecified;
          continue;
        }

        case Special::kAnd:
        case Special::kOr: {
          bool is_and = static_cast<Special>(op->aux) == Special::kAnd;
          if (rest == nil()) return boolean(is_and);
          for (; is_pair(cdr(rest)); rest = cdr(rest)) {
            Value v = eval(car(rest), env, cx);
            if (is_and ? !truthy(v) : truthy(v)) return v;
          }
          x = car(rest);
          continue;
        }

        case Special::kWhen:
        case Special::kUnless: {
          if (!is_pair(rest) || !is_pair(cdr(rest))) bad_form("when/unless", x);
          bool t = truthy(eval(car(rest), env, cx));
          if (t != (static_cast<Special>(op->aux) == Special::kWhen)) return &kUnspecified;
          Value body = cdr(rest);
          for (; is_pair(cdr(body)); body = cdr(body)) eval(car(body), env, cx);
          x = car(body);
          continue;
        }

        default:
          break;  // else, => : ordinary symbols outside cond
      }
    }

    // An application.
    Value f = eval(op, env, cx);
    if (has_tag(f, Tag::kPrimitive)) {
      auto* pr = static_cast<Primitive*>(f);
      Value argv[kStackArgs];
      int n = 0;
      Value a = rest;
      for (; is_pair(a) && n < kStackArgs; a = cdr(a)) argv[n++] = eval(car(a), env, cx);
      if (is_pair(a)) {
        int64_t total = list_length(rest);
        if (total < 0) bad_form("call", x);
        return call_big(pr, rest, int(total), env, true, cx);
      }
      if (a != nil()) bad_form("call", x);
      return call_primitive(pr, argv, n, cx);
    }
    if (has_tag(f, Tag::kClosure)) {
      auto* c = static_cast<Closure*>(f);
      Value args = nil(), tail = nil();
      Value a = rest;
      for (; is_pair(a); a = cdr(a)) {
        Value p = cons(eval(car(a), env, cx), nil());
        if (tail == nil()) args = p;
        else as_pair(tail)->cdr = p;
        tail = p;
      }
      if (a != nil()) bad_form("call", x);
      env = bind(c, args);
      Value body = c->body;
      for (; is_pair(cdr(body)); body = cdr(body)) eval(car(body), env, cx);
      x = car(body);
      continue;
    }
    for (Value a = rest; is_pair(a); a = cdr(a)) eval(car(a), env, cx);  // Scheme evaluates them
    fail("type error: not a procedure: %s (in %s)", brief(f).c_str(), brief(x).c_str());
  }
}

}  // namespace

}  // namespace scheme
