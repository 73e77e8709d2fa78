// A standalone check of the context switch (lib/sched/context.S and ctx_make): no heap, no
// scheduler, only the two files, so that it also builds with a cross compiler and runs
// under an emulator (qemu-user) on a CPU the machine does not have:
//
//   aarch64-linux-gnu-g++ -O2 -std=c++20 -Ilib test/sched/ctx_check.cc lib/sched/context.S -o ctx_check
//   qemu-aarch64 -L /usr/aarch64-linux-gnu ./ctx_check
//
// It checks that a new context starts in start(a0, a1) on its own stack with an aligned
// stack pointer, that a switch preserves the callee-saved state of both sides (integer and
// floating-point values live across switches, in a loop the compiler keeps in registers),
// and that the saved frame lies within [sp, hi) of the switched-out stack. Prints
// "ctx_check: ok, N switches, X ns per switch" and exits 0, or names the failure and
// exits 1.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "sched/context.h"

namespace {

using tricolor::internal::ctx_make;

void* g_main_sp = nullptr;
void* g_fiber_sp = nullptr;
uintptr_t g_lo = 0, g_hi = 0;
int g_failures = 0;
long g_rounds = 0;
uint64_t g_fiber_sum = 0;
double g_fiber_fsum = 0;

// Integer and floating-point values that a loop keeps in registers.
struct Live {
  uint64_t a = 1, b = 2, c = 3, d = 4, e = 5;
  double x = 0.5, y = 1.25, z = 2.75;
  [[gnu::always_inline]] void step(long i) {
    a += uint64_t(i);
    b ^= a;
    c += b;
    d += c ^ uint64_t(i);
    e += d;
    x += 1.0;
    y *= 1.0000001;
    z += x;
  }
  uint64_t sum() const { return a + b + c + d + e; }
  double fsum() const { return x + y + z; }
};

void fail(const char* what) {
  fprintf(stderr, "ctx_check: FAILED: %s\n", what);
  g_failures++;
}

[[gnu::noinline]] void fiber_body(void* a0, void* a1) {
  volatile char here = 0;
  auto at = reinterpret_cast<uintptr_t>(&here);
  if (at < g_lo || at >= g_hi) fail("the new context does not run on its own stack");
  if (a0 != reinterpret_cast<void*>(uintptr_t{0x1234}) || a1 != &g_rounds)
    fail("start() did not receive a0 and a1");
  if ((reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) & 15) != 0)
    fail("the new context's frame is not 16-byte aligned");
  // Values kept live across every switch: in callee-saved registers, which the switch
  // must save and restore (d8-d15 on aarch64 for the doubles).
  Live v;
  for (long i = 0; i < g_rounds; i++) {
    v.step(i);
    tricolor_ctx_switch(&g_fiber_sp, g_main_sp);
  }
  g_fiber_sum = v.sum();
  g_fiber_fsum = v.fsum();
  tricolor_ctx_switch(&g_fiber_sp, g_main_sp);
  fail("a finished context was resumed");
  abort();
}

void fiber_start(void* a0, void* a1) { fiber_body(a0, a1); }

// The same arithmetic without switches, for the expected results.
void expected(long rounds, uint64_t* sum, double* fsum) {
  Live v;
  for (long i = 0; i < rounds; i++) v.step(i);
  *sum = v.sum();
  *fsum = v.fsum();
}

}  // namespace

int main(int argc, char** argv) {
  g_rounds = argc > 1 ? atol(argv[1]) : 1000000;
  constexpr size_t kStack = 64 << 10;
  auto* mem = static_cast<char*>(aligned_alloc(4096, kStack));
  g_lo = reinterpret_cast<uintptr_t>(mem);
  g_hi = g_lo + kStack;
  g_fiber_sp = ctx_make(g_lo, g_hi, fiber_start, reinterpret_cast<void*>(uintptr_t{0x1234}), &g_rounds);
  if (reinterpret_cast<uintptr_t>(g_fiber_sp) < g_lo || reinterpret_cast<uintptr_t>(g_fiber_sp) >= g_hi)
    fail("ctx_make's sp is outside the stack");
  // Main's own live state across the switches.
  uint64_t m = 7;
  double mf = 3.5;
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i <= g_rounds; i++) {
    tricolor_ctx_switch(&g_main_sp, g_fiber_sp);
    uintptr_t sp = reinterpret_cast<uintptr_t>(g_fiber_sp);
    if (sp < g_lo || sp >= g_hi) {
      fail("a switched-out context's sp is outside its stack");
      break;
    }
    m = m * 3 + 1;
    mf += 0.25;
  }
  double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  uint64_t want_m = 7;
  double want_mf = 3.5;
  for (long i = 0; i <= g_rounds; i++) {
    want_m = want_m * 3 + 1;
    want_mf += 0.25;
  }
  if (m != want_m || mf != want_mf) fail("the main context's state changed across switches");
  uint64_t sum;
  double fsum;
  expected(g_rounds, &sum, &fsum);
  if (g_fiber_sum != sum || g_fiber_fsum != fsum)
    fail("the fiber's callee-saved state changed across switches");
  free(mem);
  if (g_failures) return 1;
  long switches = 2 * (g_rounds + 1);
  printf("ctx_check: ok, %ld switches, %.1f ns per switch\n", switches, ns / double(switches));
  return 0;
}
