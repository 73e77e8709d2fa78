// Context switching between stacks, and what the sanitizers must be told about it.
// See README.md for the overview.
//
// A context is a stack pointer. Switched out, the top of its stack holds the callee-saved
// registers and the return address (pushed by tricolor_ctx_switch, context.S), so a scan of
// [sp, hi) sees every pointer the context holds (the scanner's contract, gc/stacks.h).
//
// Cost: the switch itself is ~15 instructions on x86-64 (6 pushes, 2 stores/loads of sp,
// 6 pops, an indirect jump to the popped return address, not a ret: see context.S).
#pragma once

#include <cxxabi.h>

#include <cstddef>
#include <cstdint>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRICOLOR_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define TRICOLOR_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TRICOLOR_ASAN)
#define TRICOLOR_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(TRICOLOR_TSAN)
#define TRICOLOR_TSAN 1
#endif

extern "C" {
void tricolor_ctx_switch(void** save_sp, void* new_sp);
void tricolor_ctx_entry();
#if TRICOLOR_ASAN
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     size_t* size_old);
void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif
#if TRICOLOR_TSAN
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
#endif
}

namespace tricolor::internal {

using CtxStart = void (*)(void* a0, void* a1);

// The C++ runtime's exception-handling state of a thread: the stack of exceptions being
// handled (what a bare `throw;` rethrows, and what ends a handler frees) and the count that
// std::uncaught_exceptions() returns. The Itanium C++ ABI's exception-handling spec keeps it
// per thread in a `__cxa_eh_globals` that `__cxa_get_globals()` returns; <cxxabi.h> leaves
// the struct opaque, so its layout is written out here: these two fields, in this order, in
// both libstdc++ and libc++abi (ARM's EHABI unwinder adds a third, not used on x86-64 or
// aarch64). A fiber handles its own exceptions, so every switch saves the thread's copy
// into the context switched from and installs the one of the context switched to
// (switch_coro); a new fiber starts with none.
struct EhState {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

// This thread's state. Its address is fixed for the thread's life, so an M looks it up once.
inline EhState* thread_eh_state() {
  return reinterpret_cast<EhState*>(abi::__cxa_get_globals());
}

// Writes the first frame of a context at the top of the stack [lo, hi) and returns its sp:
// switching to it calls start(a0, a1) on that stack. a0 and a1 sit in register slots of
// the frame, inside [sp, hi), so a scan of the not-yet-started context sees them.
inline void* ctx_make(uintptr_t lo, uintptr_t hi, CtxStart start, void* a0, void* a1) {
  (void)lo;
#if defined(__x86_64__)
  // Popped in this order by tricolor_ctx_switch: r15 r14 r13 r12 rbx rbp, then ret.
  // After the ret, rsp = sp + 56 must be 16-byte aligned for the call in ctx_entry.
  uintptr_t sp = ((hi - 72) & ~uintptr_t{15}) + 8;
  auto* f = reinterpret_cast<uintptr_t*>(sp);
  f[0] = 0;                                              // r15
  f[1] = reinterpret_cast<uintptr_t>(a1);                // r14
  f[2] = reinterpret_cast<uintptr_t>(a0);                // r13
  f[3] = reinterpret_cast<uintptr_t>(start);             // r12
  f[4] = 0;                                              // rbx
  f[5] = 0;                                              // rbp: ends the frame chain
  f[6] = reinterpret_cast<uintptr_t>(&tricolor_ctx_entry);  // return address
  return reinterpret_cast<void*>(sp);
#elif defined(__aarch64__)
  uintptr_t sp = (hi - 160) & ~uintptr_t{15};
  auto* f = reinterpret_cast<uintptr_t*>(sp);
  for (int i = 0; i < 20; i++) f[i] = 0;
  f[0] = reinterpret_cast<uintptr_t>(start);             // x19
  f[1] = reinterpret_cast<uintptr_t>(a0);                // x20
  f[2] = reinterpret_cast<uintptr_t>(a1);                // x21
  f[11] = reinterpret_cast<uintptr_t>(&tricolor_ctx_entry);  // x30 (lr)
  return reinterpret_cast<void*>(sp);
#else
#error "tricolor: the fiber context switch is implemented for x86-64 and aarch64"
#endif
}

}  // namespace tricolor::internal
