// A mutex that spins briefly before it sleeps, for locks held for a microsecond or so (the
// heap's and each mcentral's). A plain std::mutex puts a waiter to sleep at once, and on a
// busy heap a sleep and its wake-up cost several times the critical section (glibc's
// PTHREAD_MUTEX_ADAPTIVE_NP and Go's runtime lock spin first for the same reason).
//
// One word, taken with a compare-and-swap: 0 free, 1 held, 2 held and a thread may sleep on
// it (Drepper, "Futexes Are Tricky", mutex 3; Go's lock_futex.go has the same three
// states). An unlock wakes a sleeper only from state 2. On Linux the sleep is a futex wait;
// elsewhere the waiter yields its CPU between looks. (It was a std::mutex taken with
// try_lock: glibc's pthread_mutex_trylock and unlock cost about 60 instructions a pair
// where these cost a locked instruction each, on every span refill.)
#pragma once

#include <atomic>
#include <cstdint>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <sched.h>
#endif

#include "os/cpu.h"

namespace tricolor::internal {

class SpinMutex {
 public:
  void lock() {
    if (!try_lock()) lock_slow();
  }
  bool try_lock() {
    uint32_t free = 0;
    // Acquire: the critical section's reads come after the holder's release.
    return state_.compare_exchange_strong(free, 1, std::memory_order_acquire, std::memory_order_relaxed);
  }
  void unlock() {
    // Release: the critical section's writes are visible to the next holder.
    if (state_.exchange(0, std::memory_order_release) == 2) wake_one();
  }

 private:
  static constexpr int kSpins = 100;  // about 2-5 us of PAUSE before sleeping

  [[gnu::noinline]] void lock_slow() {
    for (int i = 0; i < kSpins; i++) {
      for (int k = 0; k < 8; k++) cpu_relax();
      if (state_.load(std::memory_order_relaxed) == 0 && try_lock()) return;
    }
    // Marked contended before each sleep, so that the holder's unlock wakes a sleeper; a
    // thread that gets the lock this way holds it in state 2 (one wake-up too many at its
    // unlock at most).
    while (state_.exchange(2, std::memory_order_acquire) != 0) wait_while_contended();
  }
  void wait_while_contended() {
#if defined(__linux__)
    // Returns at once if the word is no longer 2 (an unlock came first), or on a wake-up.
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&state_), FUTEX_WAIT_PRIVATE, 2, nullptr, nullptr, 0);
#else
    sched_yield();
#endif
  }
  void wake_one() {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
#endif
  }

  std::atomic<uint32_t> state_{0};
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) && std::atomic<uint32_t>::is_always_lock_free,
                "the futex word is the atomic itself");
};

}  // namespace tricolor::internal
