// The interpreter's modules and how they meet. See README.md for the language.
//
//   reader.cc    text -> data (pairs carry their source line)
//   printer.cc   data -> text (display and write)
//   symbols.cc   the symbol table: interned symbols, a GC'd hash table reachable from a root
//   eval.cc      the evaluator: special forms, closures, proper tail calls
//   builtins.cc  the primitive procedures
//   runtime.cc   what differs between the tricolor and the bdwgc build: heap set-up, the
//                out-of-memory handler, the scheduler, spawn / join / yield, collect-garbage
//   main.cc      files and the REPL
#pragma once

#include <string>
#include <string_view>

#include "object.h"

namespace scheme {

// ---- Errors ---------------------------------------------------------------------------------
// Every error in a program is a SchemeError: the message names the kind (syntax error,
// unbound variable, type error, arity error, ...); the line is that of the innermost
// expression being evaluated (or read) when it happened. fail() throws with line -1, and the
// innermost eval frame on the way out fills in the line of the expression it was evaluating,
// so no per-thread "current line" is needed (fibers move between threads).

struct SchemeError {
  std::string message;
  int line;  // -1: not known yet
};
[[noreturn, gnu::format(printf, 1, 2)]] void fail(const char* fmt, ...);
[[noreturn]] void fail_at(int line, std::string message);

// ---- Reader -----------------------------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string_view text, int first_line = 1) : s_(text), line_(first_line) {}
  // The next datum; false at the end of the text. A syntax error throws.
  bool read(Value* out);
  // True if the text ended inside a datum (the REPL then reads another line).
  bool incomplete() const { return incomplete_; }
  int line() const { return line_; }
  int datum_line() const { return datum_line_; }  // where the last datum read starts

 private:
  Value datum();
  Value list(char close, int line);
  Value atom();
  void skip_space();
  std::string_view s_;
  size_t pos_ = 0;
  int line_;
  int datum_line_ = 0;
  bool incomplete_ = false;
};

// ---- Printer ----------------------------------------------------------------------------------

std::string to_display(Value v);  // display: strings without quotes
std::string to_write(Value v);    // write: strings quoted
void write_out(const std::string& s);  // to stdout, outside the heap (a blocking region)

// ---- Symbols ----------------------------------------------------------------------------------

void init_symbols();
Symbol* intern(std::string_view name);

// ---- Evaluation -------------------------------------------------------------------------------

// The evaluation context of one fiber (or thread), living on its own stack and passed down
// every call: how far down its stack eval may go. Thread-local storage would not do, since a
// fiber may resume on another thread after any safepoint.
struct Ctx {
  char* stack_limit;
};
// A context whose stack budget runs `bytes` below the caller's frame.
inline Ctx make_ctx(size_t bytes) {
  return Ctx{static_cast<char*>(__builtin_frame_address(0)) - bytes};
}

// Primitive arguments: a view of evaluated values on the C++ stack (scanned conservatively).
struct Args {
  Value* v;
  int n;
  const Primitive* prim;
  Ctx* cx;
  Value operator[](int i) const { return v[i]; }
};

void init_eval();
// Symbols the evaluator and reader compare against, interned by init_eval (the symbol table
// keeps them alive).
extern Symbol* g_sym_quote;
Value eval(Value x, Env* env, Ctx* cx);
Value apply(Value f, Value args, Ctx* cx);  // args: a proper list (not modified)

// ---- Builtins ---------------------------------------------------------------------------------

void init_builtins();
void define_primitive(const char* name, PrimFn fn, int min_args, int max_args);
[[noreturn]] void type_error(const Args& a, int i, const char* expected);
int64_t list_length(Value list);  // -1 if not a proper list

// ---- Runtime (runtime.cc) ------------------------------------------------------------------

void init_heap();           // the heap, its memory limit and the out-of-memory handler
void init_runtime_builtins();  // spawn, join, yield, collect-garbage, heap-stats
// Runs f(cx, arg) as the first fiber of the scheduler and returns its exit status.
int run_main(int (*f)(Ctx*, void*), void* arg);

// ---- Reporting (main.cc) ------------------------------------------------------------------

// Prints "<program>:<line>: <message>" on stderr.
void report(const SchemeError& e);
// Reports e, flushes stdout and ends the process with status 1 (from any fiber).
[[noreturn]] void die(const SchemeError& e);

}  // namespace scheme
