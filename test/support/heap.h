// Test support: one heap per test process, helpers to hide pointers from the conservative
// stack scan, and to run code on a short-lived attached thread whose stack disappears.
#pragma once

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "alloc/mspan.h"
#include "alloc/types.h"
#include "gc/checkmark.h"
#include "gc/collector.h"
#include "gc/mark.h"
#include "gc/testing.h"
#include "support/scrub.h"
#include "tricolor/gc.h"

namespace tricolor::test {

// How much slower the sanitizer builds run: tests scale their sizes down by it.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr int kSanitizerScale = 8;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr int kSanitizerScale = 8;
#else
inline constexpr int kSanitizerScale = 1;
#endif
#else
inline constexpr int kSanitizerScale = 1;
#endif

// n, divided by the sanitizer slow-down (at least 1).
inline int scaled(int n) { return n / kSanitizerScale > 0 ? n / kSanitizerScale : 1; }

// Initialises the heap once per process with the heap verifier on after every cycle.
inline void ensure_heap() {
  static bool once = [] {
    gc_options o;
    gc_options_default(&o);
    if (gc_init(&o) != 0) abort();
    tricolor::internal::set_verify_each_cycle(true);
    return true;
  }();
  (void)once;
}

// A pointer the conservative scanner cannot recognise.
inline constexpr uintptr_t kHideMask = 0x5a5a5a5a5a5a5a5aull;
inline uintptr_t hide(const void* p) { return reinterpret_cast<uintptr_t>(p) ^ kHideMask; }
inline void* unhide(uintptr_t h) { return reinterpret_cast<void*>(h ^ kHideMask); }

// GC stress builds: no stress collection runs while this lives (no effect in other builds),
// for a test whose checks count what the cycles it starts itself do, or that waits for a
// state an extra collection would undo.
struct StressCollectionsHeld {
  StressCollectionsHeld() { tricolor::internal::test_hold_stress_collections(true); }
  ~StressCollectionsHeld() { tricolor::internal::test_hold_stress_collections(false); }
  StressCollectionsHeld(const StressCollectionsHeld&) = delete;
  StressCollectionsHeld& operator=(const StressCollectionsHeld&) = delete;
};

// INV-SPAN-4 from outside: what the collector reads for the object at p (its span's heap
// bits, or its type pointer for objects over 512 B) is exactly type t's pointer map (NULL:
// gc_alloc's conservative type). "" when it is, else a description of the first difference.
inline std::string pointer_map_mismatch(const void* p, const gc_type* t) {
  using namespace tricolor::internal;
  ObjRef r;
  if (!find_object(reinterpret_cast<uintptr_t>(p), &r)) return "object not found";
  const mspan* s = r.span;
  const gc_type* want_type = t ? t : conservative_type();
  char buf[240];
  if (!s->heap_bits) {
    const gc_type* got = s->object_type(r.idx);
    if (got == want_type) return "";
    snprintf(buf, sizeof buf, "object %p (slot %u): type %s, expected %s", p, r.idx,
             got ? gc_type_name(got) : "(none)", gc_type_name(want_type));
    return buf;
  }
  uint64_t want = want_type->tile64 & s->obj_word_mask;
  uint64_t got = s->read_heap_bits(r.idx);
  if (got == want) return "";
  snprintf(buf, sizeof buf,
           "object %p (slot %u, %u B, type %s): heap bits %#llx, expected %#llx (uniform_bits %#llx)",
           p, r.idx, s->elemsize, gc_type_name(want_type), static_cast<unsigned long long>(got),
           static_cast<unsigned long long>(want),
           static_cast<unsigned long long>(s->uniform_bits.load()));
  return buf;
}

// Runs f on a new attached thread and waits for it; the thread's stack (and any stale
// pointer on it) is gone afterwards.
template <class F>
void on_fresh_thread(F&& f) {
  std::thread th([&] {
    gc_thread_attach();
    f();
    gc_thread_detach();
  });
  gc_blocking_begin();  // joining is a wait: the collector must not wait for us
  th.join();
  gc_blocking_end();
}

// Makes n noscan objects of `size` bytes on a fresh thread, all held through an array in
// the one-word root `slot` while they are made (so no cycle frees them early), and returns
// their hidden addresses. fill: every byte is written (the pages are touched).
inline std::vector<uintptr_t> rooted_population(void** slot, int n, size_t size, bool fill = false) {
  std::vector<uintptr_t> hidden;
  gc_add_root(slot, sizeof *slot);
  on_fresh_thread([&] {
    auto** arr = static_cast<void**>(gc_alloc(size_t(n) * sizeof(void*), nullptr));
    *slot = arr;
    for (int i = 0; i < n; i++) {
      void* p = gc_alloc_noscan(size);
      if (fill) memset(p, 1, size);
      gc_write_ptr(&arr[i], p);
      hidden.push_back(hide(p));
    }
  });
  return hidden;
}
// Lets a rooted_population go. The array's slots are cleared first: a stale stack word may
// keep the array itself (it did under TSan), and it must not keep the population with it.
inline void drop_population(void** slot, int n) {
  auto** arr = static_cast<void**>(*slot);
  for (int i = 0; i < n; i++) gc_write_ptr(&arr[i], nullptr);
  *slot = nullptr;
  gc_remove_root(slot);
}

[[gnu::noinline]] inline bool freed_unscrubbed(uintptr_t h) { return gc_base(unhide(h)) == nullptr; }

// True if the object that was at hidden address h has been freed (no longer an object).
// The unhidden address exists only in the frames of this check, which are scrubbed after
// it: a test may check an object alive, drop it, collect and check it freed, on one thread.
inline bool freed(uintptr_t h) {
  bool r = freed_unscrubbed(h);
  scrub_stack_below();
  return r;
}

// The node the collector tests build graphs of: two traced fields, and an id with its
// complement, so that a freed or reused node is caught when it is read.
struct Node {
  Node* left;
  Node* right;
  uint64_t id;
  uint64_t check;  // ~id
};

inline const gc_type* node_type() {
  static const gc_type* t = [] {
    size_t offs[] = {offsetof(Node, left), offsetof(Node, right)};
    return gc_type_new("Node", sizeof(Node), offs, 2);
  }();
  return t;
}

inline Node* new_node(uint64_t id) {
  auto* n = static_cast<Node*>(gc_alloc(sizeof(Node), node_type()));
  n->id = id;
  n->check = ~id;
  return n;
}

// Collects until every object of `hidden` (hidden addresses) is freed, at most `rounds`
// collections, and says what kept the others. Stacks are scanned conservatively, so a
// stale word on a stack (a callee-saved register a caller still holds, a slot a frame
// never wrote) legitimately keeps the object it names, and what that object points to,
// for as long as the word stays. The retention probe (gc/checkmark.h) names each holder:
// a stack word, or a marked heap object that is itself probed (one of `hidden`, or a
// holder found in an earlier round, which the next rounds probe too: a chain from a
// stack-held object, such as an array of them kept by a stale word), is allowed; a
// registered root, another heap object, or no holder at all is a collector bug and goes
// into *unexplained (the last round's count). `why` gets the probe's lines.
// Returns how many of `hidden` are still allocated.
inline size_t collect_until_freed(const std::vector<uintptr_t>& hidden, int rounds,
                                  std::vector<std::string>* why, size_t* unexplained) {
  std::vector<uintptr_t> probed = hidden;  // hidden addresses
  auto is_probed = [&probed](uintptr_t addr) {
    for (uintptr_t h : probed)
      if ((h ^ kHideMask) == addr) return true;
    return false;
  };
  size_t kept = 0;
  *unexplained = 0;
  for (int r = 0; r < rounds; r++) {
    tricolor::internal::set_retention_probe(probed.data(), probed.size(), kHideMask);
    gc_collect();
    kept = 0;
    for (uintptr_t h : hidden) kept += !freed(h);
    if (kept == 0) break;
    *unexplained = 0;
    std::vector<uintptr_t> found;
    for (const std::string& line : tricolor::internal::retention_probe_report()) {
      why->push_back(line);
      if (line.find("stack") != std::string::npos) continue;
      uintptr_t holder = 0;
      size_t at = line.find("marked heap object ");
      if (at != std::string::npos &&
          sscanf(line.c_str() + at, "marked heap object %" SCNxPTR, &holder) == 1) {
        if (is_probed(holder)) continue;
        found.push_back(holder ^ kHideMask);
      }
      (*unexplained)++;
    }
    tricolor::internal::set_retention_probe(nullptr, 0, 0);
    for (uintptr_t h : found)
      if (!is_probed(h ^ kHideMask)) probed.push_back(h);
  }
  tricolor::internal::set_retention_probe(nullptr, 0, 0);
  return kept;
}

// collect_until_freed with the checks every caller makes, for the Catch2 test files (the
// header is also used without Catch2, by poison_check.cc): each line of the probe's report
// is a warning in the test's output, and an object kept by anything but a stale stack word
// (or a chain from a stack-held one) fails the test. The caller checks `kept` itself: how
// many a stale word may keep depends on what the objects point to.
#ifdef CATCH_VERSION_MAJOR
struct Retention {
  size_t kept = 0;                // objects still allocated
  std::vector<std::string> why;   // the probe's lines
};
inline Retention require_freed_or_stack_held(const std::vector<uintptr_t>& hidden, int rounds) {
  Retention r;
  size_t unexplained = 0;
  r.kept = collect_until_freed(hidden, rounds, &r.why, &unexplained);
  for (auto& w : r.why) WARN(w);
  REQUIRE(unexplained == 0);
  return r;
}
#endif

}  // namespace tricolor::test
