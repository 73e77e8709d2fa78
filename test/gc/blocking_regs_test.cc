// A thread inside a blocking region keeps the objects its caller holds in callee-saved
// registers (lib/gc/thread.cc, gc_blocking_begin's entry): the only reference to an object
// is put in one register, the thread enters a blocking region and waits there, and another
// thread collects twice and allocates over the freed slots meanwhile.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <thread>

#include "support/heap.h"
#include "support/scrub.h"
#include "tricolor/gc.h"

using namespace tricolor::test;

namespace {

std::atomic<int> g_state{0};  // 1: the holder waits in its region; 2: released

// Called from the asm below with the object in one callee-saved register only.
extern "C" [[gnu::noinline, gnu::used]] void tricolor_test_wait_in_region() {
  gc_blocking_begin();
  // What a lock wait does: the stack below this frame is used again, over whatever
  // gc_blocking_begin's own frame left there (the caller's registers, pushed by it).
  scrub_stack_below<4096>();
  g_state.store(1);
  while (g_state.load() != 2) std::this_thread::yield();
  gc_blocking_end();
}

// A fresh object with a pattern, its address returned hidden; the frames that made it are
// scrubbed by the caller.
[[gnu::noinline]] uintptr_t make_object(uint64_t tag) {
  auto* p = static_cast<uint64_t*>(gc_alloc_noscan(64));
  for (int i = 0; i < 8; i++) p[i] = tag + uint64_t(i);
  return hide(p);
}

#if defined(__x86_64__)
#define HOLD_IN(REG)                                                                    \
  [[gnu::noinline]] uintptr_t hold_in_##REG(uintptr_t h) {                              \
    void* p = unhide(h);                                                                \
    void* out;                                                                          \
    asm volatile("mov %1, %%" #REG "\n\t"                                               \
                 "xor %1, %1\n\t"                                                       \
                 "call tricolor_test_wait_in_region\n\t"                                \
                 "mov %%" #REG ", %0\n\t"                                               \
                 : "=r"(out), "+r"(p)                                                   \
                 :                                                                      \
                 : #REG, "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",   \
                   "memory", "cc");                                                     \
    return hide(out);                                                                   \
  }
HOLD_IN(rbx) HOLD_IN(r12) HOLD_IN(r13) HOLD_IN(r14) HOLD_IN(r15)
const char* const kRegs[] = {"rbx", "r12", "r13", "r14", "r15"};
uintptr_t (*const kHolders[])(uintptr_t) = {hold_in_rbx, hold_in_r12, hold_in_r13, hold_in_r14,
                                            hold_in_r15};
#define HAVE_HOLDERS 1
#elif defined(__aarch64__)
#define HOLD_IN(REG)                                                                    \
  [[gnu::noinline]] uintptr_t hold_in_##REG(uintptr_t h) {                              \
    void* p = unhide(h);                                                                \
    void* out;                                                                          \
    asm volatile("mov " #REG ", %1\n\t"                                                 \
                 "mov %1, xzr\n\t"                                                      \
                 "bl tricolor_test_wait_in_region\n\t"                                  \
                 "mov %0, " #REG "\n\t"                                                 \
                 : "=r"(out), "+r"(p)                                                   \
                 :                                                                      \
                 : #REG, "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9",    \
                   "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x30",       \
                   "memory", "cc");                                                     \
    return hide(out);                                                                   \
  }
HOLD_IN(x19) HOLD_IN(x20) HOLD_IN(x24) HOLD_IN(x28)
const char* const kRegs[] = {"x19", "x20", "x24", "x28"};
uintptr_t (*const kHolders[])(uintptr_t) = {hold_in_x19, hold_in_x20, hold_in_x24, hold_in_x28};
#define HAVE_HOLDERS 1
#endif

}  // namespace

#ifdef HAVE_HOLDERS
TEST_CASE("an object held in a callee-saved register survives its thread's blocking region",
          "[gc][thread]") {
  ensure_heap();
  for (size_t k = 0; k < sizeof kRegs / sizeof kRegs[0]; k++) {
    int lost = 0;
    for (int round = 0; round < 8; round++) {
      g_state.store(0);
      uintptr_t out = 0;
      uint64_t tag = 1000 * (k + 1) + uint64_t(round);
      std::thread t([&] {
        REQUIRE(gc_thread_attach() == 0);
        uintptr_t h = make_object(tag);
        scrub_stack_below();
        out = kHolders[k](h);
        gc_thread_detach();
      });
      // Polling: the holder's allocation may start a collection (every 1000 allocations in
      // a stress build), which stops the world, this thread included.
      while (g_state.load() != 1) {
        gc_safepoint();
        std::this_thread::yield();
      }
      gc_collect();
      for (int i = 0; i < 20000; i++) (void)gc_alloc_noscan(64);  // over the freed slots
      gc_collect();
      g_state.store(2);
      gc_blocking_begin();  // the join is a wait
      t.join();
      gc_blocking_end();
      auto* p = static_cast<uint64_t*>(unhide(out));
      bool intact = !freed(out);
      for (int i = 0; intact && i < 8; i++) intact = p[i] == tag + uint64_t(i);
      if (!intact) lost++;
    }
    INFO("register " << kRegs[k]);
    CHECK(lost == 0);
  }
}
#endif
