// Marking: the grey set (work buffers), greying, scanning, draining. See lib/gc/README.md,
// "Marking".
//
// Colours: white = mark bit clear; grey = mark bit set and the object queued; black = mark
// bit set and scanned (or noscan). INV-MARK-1 (the weak tri-colour invariant, kept by the
// hybrid barrier, INV-BARRIER-1): a black object points to a white one only if that white
// object is reachable from a grey object through white objects.
// INV-MARK-2: objects allocated while marking are black (the allocator sets their bit).
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

// The global lists of full and empty work buffers.
class WorkQueue {
 public:
  void push_full(Workbuf* b);
  Workbuf* pop_full();
  Workbuf* get_empty();
  void put_empty(Workbuf* b);
  bool empty() const { return nfull_.load(std::memory_order_seq_cst) == 0; }
  bool empty_hint() const { return nfull_.load(std::memory_order_relaxed) == 0; }
  void free_all();

 private:
  std::mutex mu_;
  Workbuf* full_ = nullptr;
  Workbuf* empty_ = nullptr;
  std::atomic<size_t> nfull_{0};
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
  void put_slow(uintptr_t obj);
  bool get_slow(uintptr_t* obj);
  void balance();  // gives half of the buffer to the shared queue
  void dispose();  // publishes the buffer and the counters
};

struct MarkState {
  WorkQueue queue;
  std::atomic<uint64_t> bytes_marked{0};
  std::atomic<uint64_t> scan_work{0};
  // Objects allocated black this cycle (INV-MARK-2): counted in the marked heap the pacer
  // sizes the next goal from, as Go counts them (see finish_mark).
  std::atomic<uint64_t> bytes_allocated_black{0};
  std::atomic<int> busy{0};  // markers holding work outside the queue (termination)
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
// Greys every aligned word of [lo, hi) that points into the heap (stacks, roots).
void scan_conservative(uintptr_t lo, uintptr_t hi, GcWork& w);
// Drains grey objects until the queue is empty or `budget` bytes were scanned
// (budget < 0: no limit). Returns bytes scanned.
int64_t drain(GcWork& w, int64_t budget);
// Marks an object allocated during marking (INV-MARK-2).
void mark_new_object(mspan* s, uint32_t idx);

}  // namespace tricolor::internal
