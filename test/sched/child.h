// Test support: runs one hidden test case of this test program in a new process, for the
// outcomes a test process must not share (a collection that may never finish, a fiber that
// overflows its stack). The child is the program started afresh (fork, then exec of
// /proc/self/exe), not a fork of this process: the heap of this process has threads a bare
// fork would not copy. Its stdout and stderr go to a file the parent reads.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace tricolor::test {

struct ChildCase {
  int exit_code = -1;      // -1: killed by a signal (or given up on)
  int signal = 0;          // the signal that ended it, 0 if it exited
  bool gave_up = false;    // still running at the deadline: killed
  std::string output;      // its stdout and stderr
};

// Runs the test case `name` (hidden ones included, "[.]") in a child; kills it if it runs
// past deadline_s, a bound far above its normal run time that only a hang reaches. The name
// must hold no comma: Catch2 reads one as a separator between test names.
inline ChildCase run_case_in_child(const char* name, int deadline_s) {
  const char* dir = getenv("TMPDIR");
  std::string path = std::string(dir && *dir ? dir : "/tmp") + "/tricolor-child-XXXXXX";
  int fd = mkstemp(path.data());
  if (fd < 0) abort();
  const char* argv[] = {"/proc/self/exe", name, nullptr};
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) abort();
  if (pid == 0) {  // async-signal-safe calls only until exec: this process has threads
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  close(fd);
  ChildCase r;
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(deadline_s);
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      r.gave_up = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status) && !r.gave_up) r.signal = WTERMSIG(status);
  std::ifstream in(path, std::ios::binary);
  r.output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  unlink(path.c_str());
  return r;
}

}  // namespace tricolor::test
