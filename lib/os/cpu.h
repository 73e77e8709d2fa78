// A spin-wait hint for the CPU (x86 PAUSE, Arm YIELD): spin loops call it between polls.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <cstdint>

namespace tricolor::internal {

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// One step of a wait for another thread that may need this very CPU: a PAUSE for the
// first `spin_ns` of the wait (started at `start_ns`), then a yield of the CPU. When every
// CPU is busy (mutators and mark workers), the thread waited for can be runnable on the
// waiter's own CPU, and pure spinning would hold it off until the next scheduler tick.
inline void spin_or_yield(uint64_t start_ns, uint64_t now_ns, uint64_t spin_ns = 5000) {
  if (now_ns - start_ns < spin_ns) cpu_relax();
  else sched_yield();
}


// Names the calling thread as `top -H`, gdb and /proc/<pid>/task/*/comm show it: the
// collector's own threads were otherwise indistinguishable from the program's (each took
// the process's name). Linux allows 15 characters; a longer name is cut there. Failure is
// harmless (the thread keeps its old name).
inline void set_thread_name(const char* name) {
  char buf[16];
  size_t i = 0;
  for (; name[i] && i < sizeof buf - 1; i++) buf[i] = name[i];
  buf[i] = '\0';
  pthread_setname_np(pthread_self(), buf);
}

}  // namespace tricolor::internal
