// Fiber stack memory: the only place that maps memory for fiber stacks.
//
// A fiber stack is one anonymous mapping of `size + guard` bytes. The lowest page (the guard)
// is PROT_NONE, so running off the bottom of the stack faults at once instead of corrupting
// the neighbouring mapping. The rest is read-write but committed lazily: the OS backs a page
// only when it is first touched (MAP_NORESERVE), so a fiber that uses 4 KiB of a 256 KiB
// stack costs 4 KiB of memory plus the address space.
//
// Free stacks go to a process-wide pool (one mutex) and are handed out again before anything
// new is mapped; the scheduler keeps a small lock-free cache per P in front of it
// (lib/sched/proc.cc). A reused stack keeps its committed pages: that is the point of reuse.
//
// Each stack is two kernel mappings (guard + body), and Linux limits a process to
// vm.max_map_count mappings (65530 by default): about 32 000 fiber stacks alive at once.
// stack_mem_alloc fails cleanly (false, and a message) before that limit: the stacks may use
// all but an eighth of the mappings (at least 4096 left), so that the heap, mimalloc and the
// program can still map memory. At the limit itself the next mapping anywhere failed, and the
// next collection aborted in mimalloc (a client's 32 720 sleeping fibers).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tricolor::internal {

struct StackMem {
  uintptr_t lo = 0;  // lowest usable address (the guard page lies just below)
  uintptr_t hi = 0;  // one past the highest: the stack grows down from here
  size_t size() const { return hi - lo; }
};

// The usable size a request turns into: rounded up to pages, at least 16 KiB.
size_t stack_mem_round(size_t size);
// A stack of stack_mem_round(size) usable bytes, from the pool or newly mapped. false with a
// message if the OS refuses the mapping.
bool stack_mem_alloc(size_t size, StackMem* out);
// Returns stacks to the pool. A pool holding more than kStackPoolMax stacks unmaps the excess.
void stack_mem_free(const StackMem* stacks, size_t n);
// Unmaps every pooled stack (the end of gc_run).
void stack_mem_release_pool();
// Tests: the number of stacks that may be mapped at once (0: from vm.max_map_count).
void test_set_stack_map_budget(size_t stacks);
// Stacks currently pooled, and stacks mapped in total (pooled + in use).
size_t stack_mem_pooled();
size_t stack_mem_mapped();
// The size of the PROT_NONE guard below every stack (one page).
size_t stack_mem_guard();

inline constexpr size_t kStackPoolMax = 1024;

}  // namespace tricolor::internal
