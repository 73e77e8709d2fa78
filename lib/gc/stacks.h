// Stacks the collector scans: attached threads' stacks and fiber stacks.
// See lib/gc/README.md for the overview; this header is the contract between the collector
// and the scheduler (lib/sched).
//
// Every stack that may hold heap pointers is a Stack registered here. A stack is scanned
// conservatively (every aligned word of [sp, hi), interior pointers count) once per cycle,
// and is black afterwards (INV-STACK-1: no stack is rescanned in a cycle).
//
// Ownership of a stack is a small state machine (the `state` field, atomic):
//
//   state      | who may touch the memory of the stack      | scanned by
//   -----------+--------------------------------------------+-----------------------------
//   kRunning   | the thread running on it (its owner)       | the owner, at its next safepoint
//   kParked    | nobody; sp/regs saved                      | whoever CASes it to kScanning
//   kScanning  | the scanner only                           | (being scanned)
//   kDead      | nobody; not scanned                        | -
//
// Transitions: kRunning -> kParked (stack_park, by the owner, after saving sp and registers);
// kParked -> kRunning (stack_unpark, waits while kScanning; outside a mark, when nobody
// scans, a plain store); kParked -> kScanning -> kParked (the collector, during a mark only). A fiber stack is kParked while its fiber is runnable, blocked or not yet
// started; a thread stack is kParked while its thread is inside gc_blocking_begin/end or
// while the thread runs a fiber on another stack.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tricolor::internal {

// Callee-saved registers of the ABI (x86-64: rbx rbp r12-r15; aarch64: x19-x29, d8-d15 are
// not pointers). Saved by gc_blocking_begin's entry (thread.cc) so that a parked stack's
// scan sees them.
inline constexpr int kSavedRegs = 12;
// How many of them gc_blocking_begin's entry saves: rbx rbp r12-r15; x19-x29.
#if defined(__x86_64__)
inline constexpr int kEntrySavedRegs = 6;
#else
inline constexpr int kEntrySavedRegs = 11;
#endif
static_assert(kEntrySavedRegs <= kSavedRegs);

struct Stack {
  enum class State : uint32_t { kRunning = 0, kParked = 1, kScanning = 2, kDead = 3 };

  std::atomic<State> state{State::kRunning};
  uintptr_t lo = 0;  // lowest address of the stack memory
  uintptr_t hi = 0;  // one past the highest; stacks grow down from here
  // Saved stack pointer while parked: the scan covers [sp, hi). Written by the owner before
  // the release-store of kParked; read by the scanner after its acquire-CAS.
  uintptr_t sp = 0;
  uintptr_t regs[kSavedRegs] = {};  // registers saved by stack_park_saved (else zero)
  // The cycle in which this stack was last scanned; the stack is black for that cycle.
  std::atomic<uint64_t> scanned_cycle{0};
  const char* label = "";           // "thread", "fiber": named in warnings
  // Registry links, guarded by the registry lock (lib/gc/stacks.cc).
  Stack* reg_next = nullptr;
  Stack* reg_prev = nullptr;
};

// Registers a stack occupying [lo, hi), in state kParked with sp = hi (empty), and black for
// the current cycle (a new stack holds no pointer the barrier has not already seen). The
// memory of the Stack object is owned by the caller and must stay valid until
// stack_unregister returns.
void stack_register(Stack* s, uintptr_t lo, uintptr_t hi, const char* label);
// Removes the stack (the caller owns it: kRunning, kParked, or retired). It is not scanned
// again.
void stack_unregister(Stack* s);
// A fiber's stack dies but stays registered, kDead, for the next fiber of the same G (Go
// keeps dead goroutines in allgs): spawning and exiting then take no registry lock. The
// caller owns the stack (kRunning); a dead stack is never scanned (noted as scanned if the
// mark is waiting for it).
void stack_retire(Stack* s);
// Brings a retired stack back for new memory [lo, hi), as stack_register does: kParked,
// sp = hi, black for the cycle being marked.
void stack_revive(Stack* s, uintptr_t lo, uintptr_t hi);

// The owner gives the stack up: sp is the lowest address holding live data (for a fiber,
// the sp saved by the context switch, which pushed the callee-saved registers below it).
// Release ordering: everything the owner wrote to the stack is visible to the scanner.
void stack_park(Stack* s, uintptr_t sp);
// Copies the callee-saved registers `regs` (kEntrySavedRegs words, as gc_blocking_begin's
// entry saved them) into s->regs, then parks with sp. Used by gc_blocking_begin, where the thread
// keeps running C code below sp.
void stack_park_saved(Stack* s, const uintptr_t* regs, uintptr_t sp);
// Takes the stack back (kParked -> kRunning); spins, then sleeps, while a scan holds it.
void stack_unpark(Stack* s);

// The stack the calling thread is running on now (its own, or the fiber's it switched to).
// The thread scans this stack itself at a safepoint when the cycle asks for it.
Stack* current_stack();
void set_current_stack(Stack* s);
// The calling thread's own (native) stack, registered by gc_thread_attach.
Stack* thread_stack();

// Shades p (if it points into the heap) when the collector is marking: used when a pointer
// moves from one stack to another without passing through the heap (gc_go's argument).
void shade_if_marking(const void* p);

// Scheduler hooks, called by gc_blocking_begin/end on the calling thread (defined in
// lib/sched; no-ops on a thread that is not a scheduler worker).
void sched_blocking_begin();
void sched_blocking_end();
// Called by the safepoint slow path when kPollPreempt is set (defined in lib/sched; a fiber
// asked to yield does so here).
void sched_safepoint();
// The P the calling thread runs a fiber on, or -1 (not a scheduler worker, or no P now).
int sched_current_p();
// The number of P's of the running gc_run, 0 when none runs (any thread may ask).
int sched_active_procs();

// Bits of tricolor_poll_request (gc.h): why the next safepoint must take its slow path.
enum PollBits : uint32_t {
  kPollStopTheWorld = 1u << 0,  // the collector is stopping the world
  kPollStackScan = 1u << 1,     // running stacks must scan themselves this cycle
  kPollFlush = 1u << 2,         // write-barrier buffers must be flushed (mark termination)
  kPollPreempt = 1u << 3,       // sysmon asked some fiber to yield (lib/sched)
  kPollStress = 1u << 4,        // GC stress mode: collect at safepoints
};
void poll_set(uint32_t bits);    // atomic OR into tricolor_poll_request
void poll_clear(uint32_t bits);  // atomic AND-NOT

}  // namespace tricolor::internal
