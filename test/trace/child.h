// Test support: each tracing test runs its own heap in a forked child process, so it can
// choose gc_init's options (a dump path, gctrace), shut the heap down or exit without doing
// so, and have its stderr captured. The parent process never starts a heap, so every fork
// happens from a single-threaded process.
#pragma once

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

#include "gc/collector.h"

// LeakSanitizer's switch, when the test runs under it.
extern "C" void __lsan_disable() __attribute__((weak));

namespace tricolor::test {

// What a child left behind.
struct ChildRun {
  int exit_code = -1;   // -1: killed by a signal
  std::string stderr_text;
};

// Memory shared with the children forked after it is made: children write figures here,
// the parent checks them. Never freed (a test process is short-lived).
template <class T>
T* shared_new() {
  void* p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) abort();
  return new (p) T();
}

// The paths temp_path handed out, removed when the test process exits: the dumps the
// children write there are read by the parent and then of no use. Only by the process that
// made them: a child that leaves by exit() runs this destructor too.
struct TempPaths {
  pid_t owner = getpid();
  std::vector<std::string> paths;
  ~TempPaths() {
    if (getpid() != owner) return;
    for (const std::string& p : paths) remove(p.c_str());  // a file, or an empty directory
  }
};
inline TempPaths& temp_paths() {
  static TempPaths t;
  return t;
}

// A fresh path in the temporary directory (the file does not exist yet), removed at exit.
inline std::string temp_path(const char* stem) {
  const char* dir = getenv("TMPDIR");
  std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/" + stem + "-XXXXXX";
  int fd = mkstemp(tmpl.data());
  if (fd < 0) abort();
  close(fd);
  unlink(tmpl.c_str());
  temp_paths().paths.push_back(tmpl);
  return tmpl;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs f in a forked child with stderr sent to a file. A failed REQUIRE in the child is
// printed there by Catch2's reporter and makes the child exit with 1. With exit_normally
// the child leaves by exit(0), running the atexit handlers; otherwise by _exit(0).
template <class F>
ChildRun run_in_child(F&& f, bool exit_normally = false) {
  std::string err_path = temp_path("tricolor-stderr");
  std::cout.flush();
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) abort();
  if (pid == 0) {
    FILE* e = fopen(err_path.c_str(), "w");
    if (!e) _exit(3);
    dup2(fileno(e), 2);
    // A program that exits without gc_shutdown leaves the collector's threads running, and
    // their objects allocated, by design: not a leak to report.
    if (exit_normally && __lsan_disable) __lsan_disable();
    int code = 0;
    try {
      f();
    } catch (...) {
      code = 1;
    }
    // A heap verifier failure in the child's heap fails the test, checked or not.
    if (uint64_t bad = tricolor::internal::verify_failures(); bad != 0) {
      fprintf(stderr, "the heap verifier reported %llu failure(s)\n",
              static_cast<unsigned long long>(bad));
      code = 1;
    }
    std::cout.flush();
    fflush(nullptr);
    if (exit_normally && code == 0) exit(0);
    _exit(code);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ChildRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.stderr_text = read_file(err_path);
  unlink(err_path.c_str());
  return r;
}

}  // namespace tricolor::test
