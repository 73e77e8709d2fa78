// Test support: a strict JSON validator (RFC 8259) and a reader of the top-level members of
// one heap-trace line, enough to check a dump without a JSON library.
#pragma once

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tricolor::test {

// One parsed line: the raw text of each top-level member's value.
struct JsonLine {
  std::map<std::string, std::string> members;
  bool has(const std::string& k) const { return members.count(k) != 0; }
  // A string member without its quotes (escapes left as written); "" if absent.
  std::string str(const std::string& k) const {
    auto it = members.find(k);
    if (it == members.end() || it->second.size() < 2 || it->second[0] != '"') return "";
    return it->second.substr(1, it->second.size() - 2);
  }
  double num(const std::string& k) const {
    auto it = members.find(k);
    return it == members.end() ? -1 : strtod(it->second.c_str(), nullptr);
  }
  uint64_t u64(const std::string& k) const {
    auto it = members.find(k);
    return it == members.end() ? ~uint64_t{0} : strtoull(it->second.c_str(), nullptr, 10);
  }
  const std::string& raw(const std::string& k) const {
    static const std::string none;
    auto it = members.find(k);
    return it == members.end() ? none : it->second;
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  // Parses a whole text that must be one JSON object; fills `out` with its members.
  bool parse_object_line(JsonLine* out, std::string* err) {
    ws();
    if (!object(out, 0)) return fail(err);
    ws();
    if (i_ != s_.size()) {
      error_ = "trailing characters";
      return fail(err);
    }
    return true;
  }

  // Any JSON value (for arrays of arrays inside members).
  bool parse_value(std::string* err) {
    ws();
    if (!value(0)) return fail(err);
    ws();
    if (i_ != s_.size()) {
      error_ = "trailing characters";
      return fail(err);
    }
    return true;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
  std::string error_;

  bool fail(std::string* err) {
    if (err) *err = (error_.empty() ? std::string("syntax error") : error_) + " at column " +
                    std::to_string(i_ + 1);
    return false;
  }
  bool bad(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) i_++;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      i_++;
      return true;
    }
    return false;
  }
  bool value(int depth) {
    if (depth > 64) return bad("nesting too deep");
    ws();
    if (i_ >= s_.size()) return bad("unexpected end");
    char c = s_[i_];
    if (c == '{') return object(nullptr, depth + 1);
    if (c == '[') return array(depth + 1);
    if (c == '"') return string();
    if (c == '-' || isdigit(static_cast<unsigned char>(c))) return number();
    for (const char* lit : {"true", "false", "null"}) {
      std::string_view l(lit);
      if (s_.substr(i_, l.size()) == l) {
        i_ += l.size();
        return true;
      }
    }
    return bad("unexpected character");
  }
  bool object(JsonLine* out, int depth) {
    if (!eat('{')) return bad("expected '{'");
    if (eat('}')) return true;
    for (;;) {
      ws();
      size_t k0 = i_;
      if (!string()) return false;
      std::string key(s_.substr(k0 + 1, i_ - k0 - 2));
      if (!eat(':')) return bad("expected ':'");
      ws();
      size_t v0 = i_;
      if (!value(depth)) return false;
      if (out) {
        if (out->members.count(key)) return bad("duplicate member");
        out->members[key] = std::string(s_.substr(v0, i_ - v0));
      }
      if (eat(',')) continue;
      if (eat('}')) return true;
      return bad("expected ',' or '}'");
    }
  }
  bool array(int depth) {
    if (!eat('[')) return bad("expected '['");
    if (eat(']')) return true;
    for (;;) {
      if (!value(depth)) return false;
      if (eat(',')) continue;
      if (eat(']')) return true;
      return bad("expected ',' or ']'");
    }
  }
  bool string() {
    if (i_ >= s_.size() || s_[i_] != '"') return bad("expected a string");
    i_++;
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        i_++;
        return true;
      }
      if (c < 0x20) return bad("control character in a string");
      if (c == '\\') {
        i_++;
        if (i_ >= s_.size()) break;
        char e = s_[i_];
        if (e == 'u') {
          for (int k = 1; k <= 4; k++)
            if (i_ + k >= s_.size() || !isxdigit(static_cast<unsigned char>(s_[i_ + k])))
              return bad("bad \\u escape");
          i_ += 4;
        } else if (!strchr("\"\\/bfnrt", e)) {
          return bad("bad escape");
        }
      }
      i_++;
    }
    return bad("unterminated string");
  }
  bool number() {
    size_t i0 = i_;
    if (s_[i_] == '-') i_++;
    if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_]))) return bad("bad number");
    if (s_[i_] == '0') i_++;
    else
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    if (i_ < s_.size() && s_[i_] == '.') {
      i_++;
      if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_]))) return bad("bad fraction");
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      i_++;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) i_++;
      if (i_ >= s_.size() || !isdigit(static_cast<unsigned char>(s_[i_]))) return bad("bad exponent");
      while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) i_++;
    }
    return i_ > i0;
  }
};

// Splits an array of arrays of numbers ("[[1,2],[3,4]]") into rows; a test helper for the
// per-class members. Assumes the text already passed the validator.
inline std::vector<std::vector<uint64_t>> number_rows(const std::string& raw) {
  std::vector<std::vector<uint64_t>> rows;
  std::vector<uint64_t>* row = nullptr;
  for (size_t i = 0; i < raw.size(); i++) {
    char c = raw[i];
    if (c == '[' && i > 0) {
      rows.emplace_back();
      row = &rows.back();
    } else if (row && isdigit(static_cast<unsigned char>(c))) {
      char* end = nullptr;
      row->push_back(strtoull(raw.c_str() + i, &end, 10));
      i = size_t(end - raw.c_str()) - 1;
    }
  }
  return rows;
}

// Reads a file's lines (without their newlines).
inline std::vector<std::string> read_lines(const std::string& path, bool* ends_with_newline = nullptr) {
  std::ifstream in(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (ends_with_newline) *ends_with_newline = !all.empty() && all.back() == '\n';
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < all.size()) {
    size_t nl = all.find('\n', start);
    if (nl == std::string::npos) nl = all.size();
    lines.push_back(all.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace tricolor::test
