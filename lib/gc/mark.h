// Marking: the grey set (work buffers), greying, scanning, draining. See lib/gc/README.md,
// "Marking".
//
// Colours: white = mark bit clear; grey = mark bit set and the object queued; black = mark
// bit set and scanned (or noscan). INV-MARK-1 (the weak tri-colour invariant, kept by the
// hybrid barrier, INV-BARRIER-1): a black object points to a white one only if that white
// object is reachable from a grey object through white objects.
// INV-MARK-2: objects allocated while marking are black (the allocator sets their bit).
// INV-MARK-4 (overflow, lib/gc/README.md "Bounded grey set"): a marker that greys an object
// when every work buffer the bound allows is taken keeps the object marked but unqueued, and
// sets MarkState::overflowed before it lowers `busy`; mark termination does not conclude
// while the flag is set: it clears it and rescans every marked object (rescan_overflowed).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "alloc/mspan.h"

namespace tricolor::internal {

inline constexpr size_t kObletBytes = 128 << 10;  // Go's maxObletBytes

// Go's workbuf: 2 KiB, about 253 object pointers.
struct Workbuf {
  static constexpr int kCap = 253;
  Workbuf* next = nullptr;
  int n = 0;
  uintptr_t obj[kCap];
};

// The bound on the grey set's memory: at most this many Workbufs exist at once (64 MiB).
// A Workbuf is 2 KiB, so the default admits 32768 buffers, about 8.3 million grey objects.
inline constexpr size_t kMaxWorkbufs = (size_t{64} << 20) / sizeof(Workbuf);
// Empty buffers kept from one cycle to the next (128 KiB); the rest are freed at the end of
// each cycle, so the grey set's memory does not stay at its peak.
inline constexpr size_t kWorkbufReserve = 64;

// The global lists of full and empty work buffers, and the count of buffers in existence
// (full, empty, or held by a marker's GcWork), at most `limit_` (kMaxWorkbufs).
class WorkQueue {
 public:
  void push_full(Workbuf* b);
  Workbuf* pop_full();
  // An empty buffer; nullptr when none is free and the bound is reached (the caller
  // overflows, INV-MARK-4).
  Workbuf* get_empty();
  void put_empty(Workbuf* b);  // frees b instead when more than `limit_` exist
  bool empty() const { return nfull_.load(std::memory_order_seq_cst) == 0; }
  bool empty_hint() const { return nfull_.load(std::memory_order_relaxed) == 0; }
  // Frees empty buffers until at most `keep` are left on the empty list.
  void trim(size_t keep);
  void set_limit(size_t nbufs);  // tests (testing.h); frees empty buffers beyond it
  size_t buffers();              // buffers in existence
  void free_all();

 private:
  std::mutex mu_;
  Workbuf* full_ = nullptr;
  Workbuf* empty_ = nullptr;
  std::atomic<size_t> nfull_{0};
  size_t nempty_ = 0;              // mu_
  size_t nbufs_ = 0;               // mu_
  size_t limit_ = kMaxWorkbufs;    // mu_
};

// A marker's local view of the grey set (Go's gcWork): one buffer, flushed when full.
struct GcWork {
  Workbuf* buf = nullptr;
  uint64_t bytes_marked = 0;  // flushed to MarkState::bytes_marked
  uint64_t scan_work = 0;     // bytes scanned, flushed to MarkState::scan_work
  // Inline while the local buffer has room (put) or items (get): a marker touches the
  // shared queue once per Workbuf::kCap objects.
  void put(uintptr_t obj) {
    if (__builtin_expect(buf != nullptr && buf->n < Workbuf::kCap, 1)) {
      buf->obj[buf->n++] = obj;
      return;
    }
    put_slow(obj);
  }
  bool get(uintptr_t* obj) {
    if (__builtin_expect(buf != nullptr && buf->n > 0, 1)) {
      *obj = buf->obj[--buf->n];
      return true;
    }
    return get_slow(obj);
  }
  void put_slow(uintptr_t obj);  // may overflow: obj stays marked, unqueued (INV-MARK-4)
  bool get_slow(uintptr_t* obj);
  void balance();  // gives half of the buffer to the shared queue
  void dispose();  // publishes the buffer and the counters
};

struct MarkState {
  WorkQueue queue;
  std::atomic<uint64_t> bytes_marked{0};
  std::atomic<uint64_t> scan_work{0};
  // Objects allocated black this cycle (INV-MARK-2): counted in the marked heap the pacer
  // sizes the next goal from, as Go counts them (see finish_mark). Each thread counts its
  // own in ThreadState::black_bytes (an atomic add here per allocation made the allocating
  // threads share one cache line: twice the cost of mark_new_object with two threads);
  // they are added here at mark termination and when a thread detaches.
  std::atomic<uint64_t> bytes_allocated_black{0};
  // Bytes of stack scanned this cycle (Go's stackScan): the pacer's goal counts them, as Go
  // 1.18+ does (an interpreter's deep stacks are scan work each cycle, like heap).
  std::atomic<uint64_t> stack_bytes{0};
  std::atomic<int> busy{0};  // markers holding work outside the queue (termination)
  // INV-MARK-4: set (seq_cst) by a busy marker whose put found no buffer, before it lowers
  // `busy`; cleared (seq_cst exchange) by the rescan that then covers the dropped objects.
  std::atomic<bool> overflowed{false};
  // Relaxed counters for tests and statistics (testing.h): puts dropped, rescans run.
  std::atomic<uint64_t> overflows{0};
  std::atomic<uint64_t> rescans{0};
};
MarkState& mark_state();

// The object containing address p, if p points into an allocated object (INV-SPAN-3).
struct ObjRef {
  mspan* span;
  uint32_t idx;
};
bool find_object(uintptr_t p, ObjRef* out);

// Marks the object p points into (if any, and white) and queues it if it has pointers.
void grey_pointer(uintptr_t p, GcWork& w);
// grey_pointer for each of n pointers, with the cache misses of their lookups overlapped
// (a write-barrier buffer's flush).
void grey_pointers(const uintptr_t* v, size_t n, GcWork& w);
// Greys every aligned word of [lo, hi) that points into the heap (stacks, roots).
void scan_conservative(uintptr_t lo, uintptr_t hi, GcWork& w);
// Drains grey objects until the queue is empty or `budget` bytes were scanned
// (budget < 0: no limit). Returns bytes scanned.
int64_t drain(GcWork& w, int64_t budget);
// INV-MARK-4: if `overflowed` is set, clears it and greys the referents of every marked,
// allocated object of every scan span (small ones by heap bits or type, large ones whole,
// conservative ones conservatively). Scanning a marked object again is harmless: what it
// pointed to when it was marked is still in it or was shaded by the deletion barrier, and
// an object allocated black (INV-MARK-2) was written under the barrier. The caller holds
// `busy` and runs with the world running: every span is swept while marking, so no span
// is freed during the walk. Returns false if the flag was clear (nothing done).
bool rescan_overflowed(GcWork& w);
// Marks an object allocated during marking (INV-MARK-2).
void mark_new_object(mspan* s, uint32_t idx);

}  // namespace tricolor::internal
