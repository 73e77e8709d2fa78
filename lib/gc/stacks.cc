// Stacks: registry, ownership hand-over and scanning. See stacks.h for the state machine.
#include "gc/stacks.h"

#include <sched.h>

#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/thread.h"
#include "os/clock.h"
#include "trace/log.h"

extern "C" uint32_t tricolor_poll_request;

namespace tricolor::internal {

namespace {

// The registry: a table of stacks with reusable slots. At mark start (world stopped) only
// its length is snapshotted (O(1)); scanners walk [0, length) in batches. A slot reused
// during the cycle holds a new stack, which is black already.
struct StackRegistry {
  std::mutex lock;
  std::vector<Stack*> slots;
  std::vector<size_t> free_slots;
  size_t live = 0;  // registered stacks, retired ones included
};
StackRegistry& g_reg = *new StackRegistry();  // never destroyed (exit with threads running)

// Stacks not yet scanned this cycle (set at mark start, world stopped).
std::atomic<int64_t> g_unscanned{0};
std::atomic<uint64_t> g_scan_cycle{0};  // the cycle being marked, 0 when not marking
size_t g_snapshot_len = 0;              // registry length at mark start (registry lock)
std::atomic<uint64_t> g_stacks_scanned{0};
// Registered stacks that are retired (kDead): not counted as live, never scanned.
std::atomic<int64_t> g_retired{0};

constinit thread_local Stack* tls_current __attribute__((tls_model("initial-exec"))) = nullptr;

// An empty stack over [lo, hi): nothing saved yet.
void set_memory(Stack* s, uintptr_t lo, uintptr_t hi) {
  s->lo = lo;
  s->hi = hi;
  s->sp = hi;
  for (auto& r : s->regs) r = 0;
}

// Marks s scanned for `cycle`; the caller owns s exclusively.
void note_scanned(Stack* s, uint64_t cycle) {
  if (s->scanned_cycle.load(std::memory_order_relaxed) == cycle) return;
  s->scanned_cycle.store(cycle, std::memory_order_release);
  g_stacks_scanned.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  if (g_unscanned.fetch_sub(1, std::memory_order_seq_cst) == 1) poll_clear(kPollStackScan);
}

}  // namespace

void poll_set(uint32_t bits) { __atomic_fetch_or(&tricolor_poll_request, bits, __ATOMIC_SEQ_CST); }
void poll_clear(uint32_t bits) { __atomic_fetch_and(&tricolor_poll_request, ~bits, __ATOMIC_SEQ_CST); }

void stack_register(Stack* s, uintptr_t lo, uintptr_t hi, const char* label) {
  set_memory(s, lo, hi);
  s->label = label;
  std::lock_guard<std::mutex> g(g_reg.lock);
  // Black for the cycle being marked, if any (INV-STACK-2: a new stack holds nothing the
  // barrier has not seen). Read under the registry lock, which mark start also holds.
  s->scanned_cycle.store(g_scan_cycle.load(std::memory_order_relaxed), std::memory_order_relaxed);
  s->state.store(Stack::State::kParked, std::memory_order_release);
  size_t idx;
  if (!g_reg.free_slots.empty()) {
    idx = g_reg.free_slots.back();
    g_reg.free_slots.pop_back();
    g_reg.slots[idx] = s;
  } else {
    idx = g_reg.slots.size();
    g_reg.slots.push_back(s);
  }
  s->reg_next = reinterpret_cast<Stack*>(idx);  // the slot index, for unregister
  g_reg.live++;
}

void stack_unregister(Stack* s) {
  Stack::State st = s->state.load(std::memory_order_acquire);
  bool retired = st == Stack::State::kDead;  // nobody scans it; counted out when it retired
  // Wait out a scan in progress, then own it.
  if (!retired && st != Stack::State::kRunning) stack_unpark(s);
  std::lock_guard<std::mutex> g(g_reg.lock);
  size_t idx = reinterpret_cast<size_t>(s->reg_next);
  if (retired) {
    g_retired.fetch_sub(1, std::memory_order_relaxed);
  } else {
    // A stack that dies unscanned holds nothing any more; it no longer delays mark
    // termination. (Pointers it gave away went through the barrier.)
    uint64_t cycle = g_scan_cycle.load(std::memory_order_relaxed);
    if (cycle && idx < g_snapshot_len && s->scanned_cycle.load(std::memory_order_relaxed) != cycle)
      note_scanned(s, cycle);
    s->state.store(Stack::State::kDead, std::memory_order_release);
  }
  g_reg.slots[idx] = nullptr;
  g_reg.free_slots.push_back(idx);
  g_reg.live--;
}

void stack_retire(Stack* s) {
  // The caller owns s (kRunning): no scanner holds it, and none claims it once it is
  // kDead. A mark that counted it at its start stops waiting for it here (INV-SCHED-2: a
  // dead fiber is not scanned; the pointers it gave away went through the barrier).
  uint64_t cycle = g_scan_cycle.load(std::memory_order_acquire);
  if (cycle && s->scanned_cycle.load(std::memory_order_relaxed) != cycle) note_scanned(s, cycle);
  g_retired.fetch_add(1, std::memory_order_relaxed);
  s->state.store(Stack::State::kDead, std::memory_order_release);
}

void stack_revive(Stack* s, uintptr_t lo, uintptr_t hi) {
  TRICOLOR_CHECK(s->state.load(std::memory_order_acquire) == Stack::State::kDead,
                 "revive of a stack that is not retired");
  set_memory(s, lo, hi);
  // Black for the cycle being marked, if any (INV-STACK-2). A mark that starts after this
  // load (the world stopped, so not before this thread's next safepoint) counts the stack
  // as live and scans it. A scanner that read the old scanned_cycle before this store and
  // claims the stack afterwards scans a new, empty stack, and note_scanned ignores the
  // second note. (A stack retired before the mark started was not counted by it.)
  s->scanned_cycle.store(g_scan_cycle.load(std::memory_order_acquire), std::memory_order_relaxed);
  g_retired.fetch_sub(1, std::memory_order_relaxed);
  s->state.store(Stack::State::kParked, std::memory_order_release);
}

void stack_park(Stack* s, uintptr_t sp) {
  s->sp = sp;
  // Release: the stack's contents and sp are visible to the scanner that acquires it.
  s->state.store(Stack::State::kParked, std::memory_order_release);
}

void stack_park_saved(Stack* s, const uintptr_t* regs, uintptr_t sp) {
  for (int i = 0; i < kEntrySavedRegs; i++) s->regs[i] = regs[i];
  stack_park(s, sp);
}

void stack_unpark(Stack* s) {
  // Outside a mark no scanner can hold the stack: scanners claim stacks only while
  // g_scan_cycle is set, which changes only with the world stopped, and the caller is
  // running (not in a blocking region), so no mark starts before this store. That spares
  // every fiber switch a compare-and-swap outside the mark.
  if (g_scan_cycle.load(std::memory_order_relaxed) == 0) {
    s->state.store(Stack::State::kRunning, std::memory_order_relaxed);
    return;
  }
  for (int spins = 0;; spins++) {
    Stack::State st = Stack::State::kParked;
    if (s->state.compare_exchange_weak(st, Stack::State::kRunning, std::memory_order_acquire))
      return;
    TRICOLOR_CHECK(st != Stack::State::kDead, "unpark of a dead stack");
    if (st == Stack::State::kRunning) return;  // already ours (nested park/unpark pairs)
    if (spins < 64) sched_yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

Stack* current_stack() { return tls_current; }
void set_current_stack(Stack* s) {
  tls_current = s;
  if (ThreadState* t = current_thread()) t->current = s;
}
Stack* thread_stack() {
  ThreadState* t = current_thread();
  return t ? &t->stack : nullptr;
}

// ---- Scanning -------------------------------------------------------------------------

// No TSan: conservative scanning reads other threads' stack words racily by design (a stale
// or changing word only keeps an object alive). No ASan: frames hold redzones, read as words.
__attribute__((no_sanitize("thread", "address")))
static void scan_stack_words(Stack* s, uintptr_t sp, GcWork& w) {
  scan_conservative(reinterpret_cast<uintptr_t>(s->regs),
                    reinterpret_cast<uintptr_t>(s->regs + kSavedRegs), w);
  if (sp < s->lo) sp = s->lo;
  scan_conservative(sp, s->hi, w);
  if (s->hi > sp) mark_state().stack_bytes.fetch_add(s->hi - sp, std::memory_order_relaxed);
}

void stacks_begin_cycle(uint64_t cycle) {
  std::lock_guard<std::mutex> g(g_reg.lock);
  g_snapshot_len = g_reg.slots.size();
  // The live stacks (O(1)): the world is stopped, so no stack is being retired or revived.
  int64_t n = int64_t(g_reg.live) - g_retired.load(std::memory_order_relaxed);
  g_unscanned.store(n, std::memory_order_seq_cst);
  g_scan_cycle.store(cycle, std::memory_order_seq_cst);
  if (n) poll_set(kPollStackScan);
}

void stacks_end_cycle() {
  std::lock_guard<std::mutex> g(g_reg.lock);
  g_scan_cycle.store(0, std::memory_order_seq_cst);
  g_snapshot_len = 0;
  poll_clear(kPollStackScan);
}

void stacks_for_each(const std::function<void(Stack*)>& f) {
  std::lock_guard<std::mutex> g(g_reg.lock);
  for (Stack* s : g_reg.slots)
    if (s) f(s);
}

int64_t stacks_unscanned() { return g_unscanned.load(std::memory_order_seq_cst); }
uint64_t stacks_scanned_total() { return g_stacks_scanned.load(std::memory_order_relaxed); }
size_t stacks_live() {
  std::lock_guard<std::mutex> g(g_reg.lock);
  return g_reg.live - size_t(g_retired.load(std::memory_order_relaxed));
}

size_t scan_parked_stacks(GcWork& w) {
  uint64_t cycle = g_scan_cycle.load(std::memory_order_acquire);
  if (!cycle) return 0;
  size_t scanned = 0;
  constexpr size_t kBatch = 64;
  Stack* batch[kBatch];
  for (size_t i = 0;;) {
    size_t n = 0;
    {
      std::lock_guard<std::mutex> g(g_reg.lock);
      size_t len = g_snapshot_len;
      if (i >= len) break;
      for (; i < len && n < kBatch; i++) {
        Stack* s = g_reg.slots[i];
        if (!s || s->scanned_cycle.load(std::memory_order_acquire) == cycle) continue;
        Stack::State st = Stack::State::kParked;
        // Acquire: the owner's writes before parking are visible to the scan.
        if (s->state.compare_exchange_strong(st, Stack::State::kScanning, std::memory_order_acquire))
          batch[n++] = s;
      }
    }
    for (size_t k = 0; k < n; k++) scan_stack_words(batch[k], batch[k]->sp, w);
    // The roots once per batch, while its owners cannot resume (INV-STACK-3): a pointer an
    // owner put into a root before it parked is found before its stack turns black.
    if (n) scan_roots(w);
    for (size_t k = 0; k < n; k++) {
      Stack* s = batch[k];
      note_scanned(s, cycle);
      s->state.store(Stack::State::kParked, std::memory_order_release);
      scanned++;
    }
  }
  return scanned;
}

std::vector<const char*> running_unscanned_labels(size_t max) {
  std::vector<const char*> out;
  uint64_t cycle = g_scan_cycle.load(std::memory_order_acquire);
  std::lock_guard<std::mutex> g(g_reg.lock);
  for (size_t i = 0; i < g_snapshot_len && out.size() < max; i++) {
    Stack* s = g_reg.slots[i];
    if (s && s->scanned_cycle.load(std::memory_order_relaxed) != cycle) out.push_back(s->label);
  }
  return out;
}

// The owner scans the stack it runs on. The registers are spilled into this frame first.
[[gnu::noinline]] __attribute__((no_sanitize("thread", "address")))
void scan_own_stack(ThreadState* t) {
  uint64_t cycle = g_scan_cycle.load(std::memory_order_acquire);
  Stack* s = t->current;
  if (!cycle || !s || s->scanned_cycle.load(std::memory_order_acquire) == cycle) return;
  __builtin_unwind_init();  // callee-saved registers to this frame
  volatile uintptr_t here = 0;
  uintptr_t sp = reinterpret_cast<uintptr_t>(&here);
  mark_state().busy.fetch_add(1, std::memory_order_seq_cst);
  GcWork w;
  if (sp < s->lo) sp = s->lo;
  scan_conservative(sp, s->hi, w);
  if (s->hi > sp) mark_state().stack_bytes.fetch_add(s->hi - sp, std::memory_order_relaxed);
  // The registered roots too (INV-STACK-3 in lib/gc/README.md): roots take plain stores,
  // so a pointer this thread moved from its stack into a root after the roots' scan at
  // mark start is found here, before this stack turns black and could take it back.
  scan_roots(w);
  w.dispose();
  note_scanned(s, cycle);
  mark_state().busy.fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace tricolor::internal
