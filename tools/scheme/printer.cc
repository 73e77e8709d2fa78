// The printer: display and write. Shared structure prints as a tree; a cycle through pairs
// or vectors stops at a depth limit rather than running forever.
#include <cmath>
#include <cstdio>

#include "interp.h"

namespace scheme {
namespace {

constexpr int kMaxDepth = 10000;

void print_number(std::string& out, Value v) {
  char buf[64];
  if (is_fixnum(v)) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(fixval(v)));
    out += buf;
    return;
  }
  double d = static_cast<Flonum*>(v)->d;
  if (std::isnan(d)) {
    out += "+nan.0";
    return;
  }
  if (std::isinf(d)) {
    out += d > 0 ? "+inf.0" : "-inf.0";
    return;
  }
  std::snprintf(buf, sizeof buf, "%.15g", d);
  if (std::strtod(buf, nullptr) != d) std::snprintf(buf, sizeof buf, "%.17g", d);
  out += buf;
  if (!std::strpbrk(buf, ".e")) out += ".0";
}

void print(std::string& out, Value v, bool write, int depth) {
  if (depth > kMaxDepth) {
    out += "...";
    return;
  }
  if (is_fixnum(v)) return print_number(out, v);
  switch (v->tag) {
    case Tag::kNil: out += "()"; return;
    case Tag::kTrue: out += "#t"; return;
    case Tag::kFalse: out += "#f"; return;
    case Tag::kUnspecified: return;
    case Tag::kEof: out += "#<eof>"; return;
    case Tag::kUnbound: out += "#<unbound>"; return;
    case Tag::kFlonum: return print_number(out, v);
    case Tag::kString:
      if (!write) {
        out += as_string(v)->view();
        return;
      }
      out += '"';
      for (char c : as_string(v)->view()) {
        if (c == '"' || c == '\\') out += '\\', out += c;
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else out += c;
      }
      out += '"';
      return;
    case Tag::kSymbol: out += as_symbol(v)->name->view(); return;
    case Tag::kPair: {
      out += '(';
      print(out, car(v), write, depth + 1);
      Value rest = cdr(v);
      int n = 0;
      for (; is_pair(rest); rest = cdr(rest)) {
        if (++n > kMaxDepth) {
          out += " ...";
          rest = nil();
          break;
        }
        out += ' ';
        print(out, car(rest), write, depth + 1);
      }
      if (rest != nil()) {
        out += " . ";
        print(out, rest, write, depth + 1);
      }
      out += ')';
      return;
    }
    case Tag::kVector: {
      auto* vec = static_cast<Vector*>(v);
      out += "#(";
      for (uint64_t i = 0; i < vec->len; i++) {
        if (i) out += ' ';
        print(out, vec->items[i], write, depth + 1);
      }
      out += ')';
      return;
    }
    case Tag::kClosure: {
      Symbol* name = static_cast<Closure*>(v)->name;
      out += "#<procedure";
      if (name) (out += ' ') += name->name->view();
      out += '>';
      return;
    }
    case Tag::kPrimitive:
      (out += "#<primitive ") += static_cast<Primitive*>(v)->name;
      out += '>';
      return;
    case Tag::kFiber: out += "#<fiber>"; return;
    case Tag::kEnv: out += "#<environment>"; return;
    case Tag::kTable: out += "#<symbol-table>"; return;
  }
  out += "#<?>";
}

}  // namespace

std::string to_display(Value v) {
  std::string s;
  print(s, v, false, 0);
  return s;
}

std::string to_write(Value v) {
  std::string s;
  print(s, v, true, 0);
  return s;
}

void write_out(const std::string& s) {
  heap::blocking_region io;  // a write to a pipe may block: never hold up the collector
  std::fwrite(s.data(), 1, s.size(), stdout);
}

}  // namespace scheme
