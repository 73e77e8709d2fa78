// A spin-wait hint for the CPU (x86 PAUSE, Arm YIELD): spin loops call it between polls.
#pragma once

namespace tricolor::internal {

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace tricolor::internal
