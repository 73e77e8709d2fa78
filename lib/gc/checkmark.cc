// Check-mark mode (see checkmark.h): an independent re-mark of the heap, run with the
// world stopped right after mark termination, compared with the collector's mark bits.
//
// 1. Roots, as the collector defines them at mark termination: the registered roots,
//    each thread's tiny block (Go's gcMarkTinyAllocs), and every registered stack: a
//    parked stack from its saved sp (and saved registers), a running one (the current
//    stack of a thread stopped at a safepoint) from the sp the thread recorded when it
//    stopped (ThreadState::stop_sp, below its spilled callee-saved registers).
// 2. A depth-first walk from the roots over the same pointer maps the marker uses (heap
//    bits, per-object types, large-object types, conservative objects), recording the
//    objects reached in a hash set: separate bits, the span's mark bits are only read.
// 3. Every object reached must be marked (INV-MARK-1 and INV-MARK-2 together imply it: the
//    roots were rescanned at mark termination and a marked object's referents are marked).
//    A miss is reported with the edge that reached it.
//
// Stacks are scanned conservatively, and a word in a live frame may be stale: a slot the
// frame never wrote (an array tail, padding) keeps a value from an older, deeper call. The
// collector's own stack scan happened earlier in the cycle, when that slot may have been
// below the stack pointer, so such a word can name an unmarked, unreachable object without
// any collector bug. By default an unmarked object named directly by a stack word is
// counted as ambiguous and not followed; TRICOLOR_CHECKMARK=strict reports it too (useful
// with a mutator that writes every stack slot it keeps). Registered roots and objects
// reached through the heap are always checked strictly.
#include "gc/checkmark.h"

#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "alloc/mheap.h"
#include "alloc/types.h"
#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/stacks.h"
#include "gc/thread.h"
#include "trace/log.h"

namespace tricolor::internal {

namespace {

// 0: off, 1: on, 2: strict. Read from the environment once.
std::atomic<int> g_mode{-1};
std::atomic<uint64_t> g_runs{0};
std::atomic<uint64_t> g_reached_total{0};

int mode() {
  int m = g_mode.load(std::memory_order_relaxed);
  if (m >= 0) return m;
  const char* e = getenv("TRICOLOR_CHECKMARK");
  int v = 0;
  if (e) {  // set but empty is malformed, as for the other variables
    if (!strcmp(e, "strict")) v = 2;
    else if (!strcmp(e, "1")) v = 1;
    else if (strcmp(e, "0") != 0)
      log_error("TRICOLOR_CHECKMARK=\"%s\" is not valid (0, 1 or strict); check-mark mode is off", e);
  }
  int expect = -1;
  g_mode.compare_exchange_strong(expect, v);
  return g_mode.load(std::memory_order_relaxed);
}

struct Walker {
  std::unordered_set<uintptr_t> seen;      // object bases reached: the separate mark bits
  std::vector<uintptr_t> stack;            // objects to scan
  std::unordered_map<uintptr_t, std::pair<uintptr_t, uint32_t>> via;  // first holder, offset
  bool strict_stacks = false;
  CheckmarkResult r;
  uint64_t reported = 0;

  void report_miss(uintptr_t base, const ObjRef& o, const char* root, uintptr_t holder,
                   size_t offset) {
    r.missed++;
    if (reported++ >= 10) return;
    if (holder)
      log_error("checkmark: object %#" PRIxPTR " (size class %u, %u bytes%s) is reachable "
                "through word %zu of object %#" PRIxPTR " but is not marked: the mark phase "
                "missed it and the sweep would free it (INV-MARK-1)",
                base, o.span->size_class(), o.span->elemsize, o.span->noscan() ? ", noscan" : "",
                offset / 8, holder);
    else
      log_error("checkmark: object %#" PRIxPTR " (size class %u, %u bytes%s) is named by %s "
                "(word at %#zx) but is not marked: the mark phase missed it and the sweep "
                "would free it",
                base, o.span->size_class(), o.span->elemsize, o.span->noscan() ? ", noscan" : "",
                root ? root : "a root", offset);
  }

  // A candidate pointer v found in a root (holder 0: `root` names it, offset = address of
  // the word) or in a heap object (holder, offset = byte offset inside it).
  void visit(uintptr_t v, const char* root, uintptr_t holder, size_t offset, bool from_stack) {
    ObjRef o;
    if (v < 4096 || !find_object(v, &o)) return;
    uintptr_t base = o.span->object_base(o.idx);
    if (seen.count(base)) return;
    if (!o.span->mark_bit(o.idx)) {
      if (from_stack && !strict_stacks) {
        r.stack_ambiguous++;
        return;  // not followed: it may be a stale word (see the top of the file)
      }
      seen.insert(base);
      r.reached++;
      report_miss(base, o, root, holder, offset);
      return;  // its referents would be reported too; the first miss is the news
    }
    seen.insert(base);
    r.reached++;
    if (!o.span->noscan()) stack.push_back(base);
  }

  __attribute__((no_sanitize("thread", "address")))
  void scan_range(uintptr_t lo, uintptr_t hi, const char* root, bool from_stack) {
    lo = (lo + 7) & ~uintptr_t{7};
    for (uintptr_t a = lo; a + 8 <= hi; a += 8)
      visit(*reinterpret_cast<uintptr_t*>(a), root, 0, a, from_stack);
  }

  __attribute__((no_sanitize("thread", "address")))
  void scan_object(uintptr_t base) {
    ObjRef o;
    if (!find_object(base, &o)) return;
    mspan* s = o.span;
    const gc_type* t = nullptr;
    if (s->size_class() == 0) t = s->large_type;
    else if (!s->heap_bits) t = s->object_type(o.idx);
    uint64_t hb = s->heap_bits ? s->read_heap_bits(o.idx) : 0;
    for (uint32_t w = 0; w < s->elemsize / 8; w++) {
      bool is_ptr;
      if (s->heap_bits) is_ptr = hb >> w & 1;
      else is_ptr = !t || t->word_is_ptr(w);
      if (!is_ptr) continue;
      visit(*reinterpret_cast<uintptr_t*>(base + 8 * w), nullptr, base, 8 * w, false);
    }
  }

  void drain() {
    while (!stack.empty()) {
      uintptr_t b = stack.back();
      stack.pop_back();
      scan_object(b);
    }
  }
};

}  // namespace

bool checkmark_enabled() { return mode() > 0; }
void set_checkmark(bool on) { g_mode.store(on ? 1 : 0); }
void set_checkmark_strict(bool on) { g_mode.store(on ? 2 : 1); }
uint64_t checkmark_runs() { return g_runs.load(std::memory_order_relaxed); }
uint64_t checkmark_reached_total() { return g_reached_total.load(std::memory_order_relaxed); }

namespace {

// The word ranges the collector treats as roots at mark termination (world stopped), with
// what each is and whether it is a stack: the registered roots; the current stack of each
// thread stopped at a safepoint, from the sp it recorded when it stopped; every parked
// stack, its saved registers and then its words from the saved sp. Shared by the check and
// the retention probe.
void for_each_root_range(const std::function<void(uintptr_t, uintptr_t, const char*, bool)>& f) {
  roots_for_each([&](uintptr_t lo, size_t bytes) { f(lo, lo + bytes, "a registered root", false); });
  for_each_thread_stopped([&](ThreadState* t) {
    Stack* s = t->current;
    if (!s || t->status.load(std::memory_order_seq_cst) != ThreadStatus::kStopped) return;
    if (s->state.load(std::memory_order_acquire) != Stack::State::kRunning) return;
    if (t->stop_sp >= s->lo && t->stop_sp < s->hi) f(t->stop_sp, s->hi, "a thread's stack", true);
  });
  stacks_for_each([&](Stack* s) {
    if (s->state.load(std::memory_order_acquire) != Stack::State::kParked) return;
    f(reinterpret_cast<uintptr_t>(s->regs), reinterpret_cast<uintptr_t>(s->regs + kSavedRegs),
      "a parked stack's saved registers", true);
    f(s->sp < s->lo ? s->lo : s->sp, s->hi, "a parked stack", true);
  });
}

}  // namespace

CheckmarkResult checkmark_heap(bool abort_on_miss) {
  Walker w;
  w.strict_stacks = mode() == 2;
  // Tiny blocks: heap objects referenced from the mcaches.
  for_each_thread_stopped([&](ThreadState* t) {
    if (uintptr_t b = t->cache.tiny_block()) w.visit(b, "a thread's tiny block", 0, 0, false);
  });
  w.drain();
  for_each_root_range([&](uintptr_t lo, uintptr_t hi, const char* what, bool stack) {
    w.scan_range(lo, hi, what, stack);
    w.drain();
  });
  g_runs.fetch_add(1, std::memory_order_relaxed);
  g_reached_total.fetch_add(w.r.reached, std::memory_order_relaxed);
  if (w.r.missed && abort_on_miss)
    TRICOLOR_CHECK(false, "checkmark: %" PRIu64 " reachable objects were not marked (of %" PRIu64
                   " reached); see the messages above", w.r.missed, w.r.reached);
  return w.r;
}

}  // namespace tricolor::internal

// ---- Retention probe (tests) ----------------------------------------------------------------
// Which words hold an object alive: with the world stopped after a mark, every registered
// root, thread stack (stopped or parked, saved registers included), tiny block and marked
// heap object is searched for a word pointing into the probed object. For a test that sees
// an object survive a collection it should not have (conservative scanning keeps an object
// a stale word names; this names the word).
namespace tricolor::internal {

namespace {
std::mutex g_probe_mu;
std::vector<uintptr_t>& g_probes = *new std::vector<uintptr_t>();  // g_probe_mu
std::vector<std::string>& g_probe_found = *new std::vector<std::string>();

}  // namespace
std::vector<std::string> probe_one(uintptr_t obj, uintptr_t end);
namespace {

__attribute__((no_sanitize("thread", "address")))
// is_ptr(word index from lo): the words the marker follows (a heap object's pointer map);
// nullptr: every word (roots and stacks, scanned conservatively).
void probe_range(uintptr_t lo, uintptr_t hi, uintptr_t obj, uintptr_t end, const char* what,
                 std::vector<std::string>& out,
                 const std::function<bool(uint32_t)>& is_ptr = nullptr) {
  for (uintptr_t a = (lo + 7) & ~uintptr_t{7}; a + 8 <= hi; a += 8) {
    if (is_ptr && !is_ptr(static_cast<uint32_t>((a - lo) / 8))) continue;
    uintptr_t v = *reinterpret_cast<uintptr_t*>(a);
    if (v < obj || v >= end) continue;
    char buf[160];
    snprintf(buf, sizeof buf, "%s: word at %#" PRIxPTR " (offset %" PRIuPTR " from %#" PRIxPTR ")",
             what, a, a - lo, lo);
    out.emplace_back(buf);
  }
}
}  // namespace

void set_retention_probe(const uintptr_t* hidden, size_t n, uintptr_t mask) {
  std::lock_guard<std::mutex> g(g_probe_mu);
  g_probes.clear();
  for (size_t i = 0; i < n; i++) g_probes.push_back(hidden[i] ^ mask);
  g_probe_found.clear();
}

std::vector<std::string> retention_probe_report() {
  std::lock_guard<std::mutex> g(g_probe_mu);
  return g_probe_found;
}

__attribute__((no_sanitize("thread", "address")))
void run_retention_probe() {
  std::lock_guard<std::mutex> g(g_probe_mu);
  g_probe_found.clear();
  for (uintptr_t p : g_probes) {
    ObjRef r;
    if (!find_object(p, &r) || !r.span->mark_bit(r.idx)) continue;  // only what was kept
    auto out = probe_one(r.span->object_base(r.idx), r.span->object_base(r.idx) + r.span->elemsize);
    for (auto& line : out) g_probe_found.push_back(line);
  }
}

__attribute__((no_sanitize("thread", "address")))
std::vector<std::string> probe_one(uintptr_t obj, uintptr_t end) {
  std::vector<std::string> out;
  for_each_thread_stopped([&](ThreadState* t) {
    uintptr_t b = t->cache.tiny_block();
    if (b && b >= obj && b < end) out.emplace_back(std::string("tiny block of thread ") + t->name);
  });
  for_each_root_range([&](uintptr_t lo, uintptr_t hi, const char* what, bool) {
    probe_range(lo, hi, obj, end, what, out);
  });
  heap().for_each_span([&](mspan* s) {
    if (s->noscan()) return;
    for (uint32_t i = 0; i < s->nelems; i++) {
      if (!s->mark_bit(i)) continue;
      uintptr_t base = s->object_base(i);
      if (base == obj) continue;
      char what[96];
      snprintf(what, sizeof what, "marked heap object %#" PRIxPTR " (class %u)", base, s->size_class());
      // Only its pointer words hold anything (a word of plain data that happens to equal
      // the address is no reason the object was kept).
      const gc_type* t = s->size_class() == 0 ? s->large_type
                         : s->heap_bits       ? nullptr
                                              : s->object_type(i);
      uint64_t hb = s->heap_bits ? s->read_heap_bits(i) : 0;
      probe_range(base, base + s->elemsize, obj, end, what, out, [&](uint32_t w) {
        if (s->heap_bits) return (hb >> w & 1) != 0;
        return !t || t->word_is_ptr(w);
      });
    }
  });
  char head[64];
  snprintf(head, sizeof head, "object %#" PRIxPTR " kept by ", obj);
  if (out.empty()) out.emplace_back("no word found now (marked through a barrier, or by a stack word gone since its scan)");
  for (auto& line : out) line = head + line;
  return out;
}

}  // namespace tricolor::internal
