// The reader: text to data. Lists remember the line where they open, which is what error
// messages report. Syntax: ( ) [ ], dotted pairs, 'x, ; comments, #| |# block comments,
// "strings" with \n \t \\ \" escapes, #(vectors), integers (fixnums, or flonums beyond 62 bits),
// decimals and exponents, #t #f, symbols.
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "interp.h"

namespace scheme {
namespace {

bool delimiter(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(' || c == ')' ||
         c == '[' || c == ']' || c == '"' || c == ';' || c == '\'';
}

}  // namespace

void Reader::skip_space() {
  while (pos_ < s_.size()) {
    char c = s_[pos_];
    if (c == '\n') {
      line_++;
      pos_++;
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
      pos_++;
    } else if (c == ';') {
      while (pos_ < s_.size() && s_[pos_] != '\n') pos_++;
    } else if (c == '#' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '|') {
      int start = line_;
      pos_ += 2;
      while (pos_ + 1 < s_.size() && !(s_[pos_] == '|' && s_[pos_ + 1] == '#')) {
        if (s_[pos_] == '\n') line_++;
        pos_++;
      }
      if (pos_ + 1 >= s_.size()) {
        incomplete_ = true;
        fail_at(start, "syntax error: unterminated block comment");
      }
      pos_ += 2;
    } else {
      return;
    }
  }
}

bool Reader::read(Value* out) {
  incomplete_ = false;
  skip_space();
  if (pos_ >= s_.size()) return false;
  datum_line_ = line_;
  *out = datum();
  return true;
}

Value Reader::datum() {
  skip_space();
  if (pos_ >= s_.size()) {
    incomplete_ = true;
    fail_at(line_, "syntax error: unexpected end of input");
  }
  char c = s_[pos_];
  int line = line_;
  if (c == '(' || c == '[') {
    pos_++;
    return list(c == '(' ? ')' : ']', line);
  }
  if (c == '#' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '(') {  // #(vector literal)
    pos_ += 2;
    Value items = list(')', line);
    int64_t n = list_length(items);
    if (n < 0) fail_at(line, "syntax error: a dotted vector literal");
    Value v = make_vector(uint64_t(n), fixnum(0));
    int64_t i = 0;
    for (Value l = items; is_pair(l); l = cdr(l)) static_cast<Vector*>(v)->items[i++] = car(l);
    return v;
  }
  if (c == ')' || c == ']') fail_at(line, std::string("syntax error: unexpected '") + c + "'");
  if (c == '\'') {
    pos_++;
    Value d = datum();
    return cons(g_sym_quote, cons(d, nil(), line), line);
  }
  if (c == '"') {
    pos_++;
    std::string s;
    for (;;) {
      if (pos_ >= s_.size()) {
        incomplete_ = true;
        fail_at(line, "syntax error: unterminated string");
      }
      char d = s_[pos_++];
      if (d == '"') break;
      if (d == '\n') line_++;
      if (d == '\\') {
        if (pos_ >= s_.size()) continue;
        char e = s_[pos_++];
        switch (e) {
          case 'n': s += '\n'; break;
          case 't': s += '\t'; break;
          case '\\': s += '\\'; break;
          case '"': s += '"'; break;
          default:
            fail_at(line_, std::string("syntax error: unknown string escape \\") + e);
        }
      } else {
        s += d;
      }
    }
    return make_string(s);
  }
  return atom();
}

Value Reader::list(char close, int line) {
  Value head = nil();
  Pair* tail = nullptr;
  for (;;) {
    skip_space();
    if (pos_ >= s_.size()) {
      incomplete_ = true;
      fail_at(line, "syntax error: unterminated list (opened here)");
    }
    char c = s_[pos_];
    if (c == ')' || c == ']') {
      if (c != close)
        fail_at(line_, std::string("syntax error: '") + c + "' closes a list opened with '" +
                           (close == ')' ? '(' : '[') + "'");
      pos_++;
      return head;
    }
    if (c == '.' && pos_ + 1 < s_.size() && delimiter(s_[pos_ + 1])) {
      if (!tail) fail_at(line_, "syntax error: '.' at the start of a list");
      pos_++;
      tail->cdr = datum();
      skip_space();
      if (pos_ >= s_.size()) {
        incomplete_ = true;
        fail_at(line, "syntax error: unterminated list (opened here)");
      }
      if (s_[pos_] != close) fail_at(line_, "syntax error: more than one datum after '.'");
      pos_++;
      return head;
    }
    int item_line = line_;
    Value d = datum();
    Pair* p = as_pair(cons(d, nil(), tail ? item_line : line));
    if (tail) tail->cdr = p;
    else head = p;
    tail = p;
  }
}

Value Reader::atom() {
  size_t start = pos_;
  while (pos_ < s_.size() && !delimiter(s_[pos_])) pos_++;
  std::string tok(s_.substr(start, pos_ - start));
  if (tok == "#t" || tok == "#true") return boolean(true);
  if (tok == "#f" || tok == "#false") return boolean(false);
  if (tok[0] == '#') fail_at(line_, "syntax error: unknown syntax '" + tok + "'");
  // A number if the whole token parses as one.
  char c0 = tok[0];
  bool numeric = (c0 >= '0' && c0 <= '9') ||
                 ((c0 == '-' || c0 == '+' || c0 == '.') && tok.size() > 1 &&
                  ((tok[1] >= '0' && tok[1] <= '9') || tok[1] == '.'));
  if (numeric) {
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(tok.c_str(), &end, 10);
    if (*end == 0 && errno == 0 && fits_fixnum(n)) return fixnum(n);
    double d = std::strtod(tok.c_str(), &end);
    if (*end == 0) return make_flonum(d);
    fail_at(line_, "syntax error: bad number '" + tok + "'");
  }
  return intern(tok);
}

}  // namespace scheme
