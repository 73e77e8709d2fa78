// A spin-wait hint for the CPU (x86 PAUSE, Arm YIELD): spin loops call it between polls.
#pragma once

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

}  // namespace tricolor::internal
