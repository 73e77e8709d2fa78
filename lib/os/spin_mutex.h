// A mutex that spins briefly before it sleeps, for locks held for a microsecond or so (the
// heap's and each mcentral's). A plain std::mutex puts a waiter to sleep at once, and on a
// busy heap a sleep and its wake-up cost several times the critical section (glibc's
// PTHREAD_MUTEX_ADAPTIVE_NP and Go's runtime lock spin first for the same reason).
#pragma once

#include <mutex>

#include "os/cpu.h"

namespace tricolor::internal {

class SpinMutex {
 public:
  void lock() {
    for (int i = 0; i < kSpins; i++) {
      if (mu_.try_lock()) return;
      for (int k = 0; k < 8; k++) cpu_relax();
    }
    mu_.lock();
  }
  bool try_lock() { return mu_.try_lock(); }
  void unlock() { mu_.unlock(); }

 private:
  static constexpr int kSpins = 100;  // about 2-5 us of PAUSE before sleeping
  std::mutex mu_;
};

}  // namespace tricolor::internal
