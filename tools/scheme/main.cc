// scheme: a small Scheme interpreter whose every object lives on the garbage-collected heap.
//
//   scheme program.scm [arg...]
//                           run a program; an error prints "program.scm:LINE: message" on
//                           stderr and exits with status 1. (command-line) returns the
//                           program's path and its arguments as a list of strings.
//   scheme [-]              a REPL on stdin (prints each value; errors do not end it)
//
// See README.md for the language and for how the interpreter uses tricolor/gc.hpp.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "interp.h"

namespace scheme {
namespace {

std::string g_program = "stdin";
std::vector<std::string> g_args;  // (command-line)

struct Options {
  const char* path;  // nullptr: REPL
};

int run_file(Ctx* cx, const char* path) {
  std::string text;
  {
    heap::blocking_region io;  // file I/O touches no heap object
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "scheme: cannot open %s: %s\n", path, std::strerror(errno));
      return 1;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  try {
    Reader reader(text);
    Value form;
    int line = 0;
    try {
      while (reader.read(&form)) {
        line = reader.datum_line();
        eval(form, nullptr, cx);
      }
    } catch (SchemeError& e) {
      if (e.line < 0) e.line = line;  // an error outside any list: a top-level atom
      throw;
    }
  } catch (const SchemeError& e) {
    std::fflush(stdout);
    report(e);
    return 1;
  }
  std::fflush(stdout);
  return 0;
}

bool read_line(std::string* line) {
  heap::blocking_region io;  // waiting for input: the collector must not wait for us
  return static_cast<bool>(std::getline(std::cin, *line));
}

int run_repl(Ctx* cx) {
  bool interactive = isatty(0);
  std::string pending;
  int first_line = 1, next_line = 1;
  for (;;) {
    if (interactive) {
      std::fputs(pending.empty() ? "> " : "  ", stdout);
      std::fflush(stdout);
    }
    std::string line;
    if (!read_line(&line)) break;
    pending += line;
    pending += '\n';
    next_line++;
    // Read every datum of the pending text first: if the text ends inside one, wait for more.
    Value forms = nil(), tail = nil();
    try {
      Reader reader(pending, first_line);
      Value form;
      while (reader.read(&form)) {
        Value p = cons(form, nil(), static_cast<uint32_t>(reader.datum_line()));
        if (tail == nil()) forms = p;
        else as_pair(tail)->cdr = p;
        tail = p;
      }
    } catch (const SchemeError& e) {
      Reader probe(pending, first_line);
      bool incomplete = false;
      try {
        Value f;
        while (probe.read(&f)) {
        }
      } catch (const SchemeError&) {
        incomplete = probe.incomplete();
      }
      if (incomplete) continue;
      report(e);
      pending.clear();
      first_line = next_line;
      continue;
    }
    pending.clear();
    first_line = next_line;
    for (Value f = forms; is_pair(f); f = cdr(f)) {
      try {
        Value v = eval(car(f), nullptr, cx);
        if (v != &kUnspecified) write_out(to_write(v) + "\n");
      } catch (SchemeError& e) {
        if (e.line < 0) e.line = static_cast<int>(as_pair(f)->aux);
        std::fflush(stdout);
        report(e);
        break;
      }
    }
    std::fflush(stdout);
  }
  if (!pending.empty()) {
    report(SchemeError{"syntax error: unexpected end of input", first_line});
    return 1;
  }
  return 0;
}

int program(Ctx* cx, void* arg) {
  auto* o = static_cast<Options*>(arg);
  return o->path ? run_file(cx, o->path) : run_repl(cx);
}

}  // namespace

void report(const SchemeError& e) {
  std::string msg = g_program;
  if (e.line > 0) msg += ":" + std::to_string(e.line);
  msg += ": " + e.message + "\n";
  heap::blocking_region io;
  std::fputs(msg.c_str(), stderr);
}

void die(const SchemeError& e) {
  std::fflush(stdout);
  report(e);
  std::_Exit(1);
}

}  // namespace scheme

namespace {
// SCHEME_RESULT=<name>: at exit, one `RESULT name=... impl=... time_s=...` line on stdout in
// the format of perf/ (perf/compare.py times the interpreter on both heaps with it).
double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}
void print_result(const char* name, double t0) {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  long hwm = 0;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (!std::strncmp(line, "VmHWM:", 6)) hwm = std::strtol(line + 6, nullptr, 10);
    std::fclose(f);
  }
#if SCHEME_BDWGC
  const char* impl = "bdwgc";
  unsigned long cycles = GC_get_gc_no();
  double max_pause_us = 0;
#else
  const char* impl = "tricolor";
  gc_stats st;
  gc_read_stats(&st);
  unsigned long cycles = st.num_gc;
  double max_pause_us = double(st.pause_max_ns) / 1e3;
#endif
  std::printf("RESULT name=%s impl=%s time_s=%.4f cpu_s=%.3f peak_rss_kb=%ld gc_cycles=%lu "
              "max_pause_us=%.1f\n", name, impl, now_s() - t0, cpu, hwm, cycles, max_pause_us);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace scheme;
  double t0 = now_s();
  Options o{nullptr};
  if (argc >= 2 && (!std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help"))) {
    std::fprintf(stderr,
                 "usage: %s [program.scm [arg...] | -]\n  with no program (or -): a REPL on stdin\n",
                 argv[0]);
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "-") != 0) {
    o.path = argv[1];
    g_program = argv[1];
  }
  for (int i = 1; i < argc; i++) g_args.emplace_back(argv[i]);
  init_heap();
  init_symbols();
  init_eval();
  init_builtins();
  init_runtime_builtins();
  define_primitive("command-line", [](const Args&) -> Value {
    Value l = nil();
    for (size_t i = g_args.size(); i > 0; i--) l = cons(make_string(g_args[i - 1]), l);
    return l;
  }, 0, 0);
  int status = run_main(program, &o);
  if (const char* name = std::getenv("SCHEME_RESULT")) print_result(name, t0);
  std::fflush(stdout);
  std::_Exit(status);  // no static destructors racing the collector's threads
}
