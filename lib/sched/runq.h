// Run queues: the P's local queue (Go's runq: a 256-slot ring plus runnext) and the global
// queue. See README.md for the overview.
//
// Local queue, INV-RUNQ-1: only the owner of the P (the M holding it) pushes (writes slots and
// `tail`); any M may take from the front by CAS on `head`; so tail - head is in [0, 256].
// Slots are relaxed atomics: a stealer may read a slot the owner is overwriting, but then its
// CAS on head fails and the value is discarded.
#pragma once

#include <atomic>
#include <cstdint>

namespace tricolor::internal {

struct G;

inline constexpr uint32_t kRunqSize = 256;

struct alignas(64) LocalRunq {
  std::atomic<uint32_t> head{0};  // next slot to take; CAS by the owner and stealers
  std::atomic<uint32_t> tail{0};  // next slot to fill; stored by the owner only
  std::atomic<G*> runnext{nullptr};  // runs before the ring; exchanged by the owner, CAS by stealers
  std::atomic<G*> slots[kRunqSize] = {};

  bool empty() const {
    // seq_cst: used by the "any work left?" re-check before an M sleeps (lost wake-ups).
    return head.load() == tail.load() && runnext.load() == nullptr;
  }
  uint32_t size() const {
    uint32_t h = head.load(std::memory_order_acquire);
    uint32_t t = tail.load(std::memory_order_acquire);
    return t - h;
  }
};

// The global queue: a FIFO linked through G::schedlink, guarded by the scheduler lock; its
// length is also kept in an atomic so that "is it empty?" needs no lock.
struct GlobalRunq {
  G* head = nullptr;
  G* tail = nullptr;
  std::atomic<int64_t> size{0};
};

}  // namespace tricolor::internal
