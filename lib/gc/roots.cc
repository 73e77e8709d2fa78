// Registered roots (gc_add_root / gc_remove_root): ranges scanned conservatively at mark
// start and again at mark termination (they may be written with plain stores).
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "gc/collector.h"
#include "gc/mark.h"
#include "tricolor/gc.h"
#include "trace/log.h"

namespace tricolor::internal {
namespace {

// The registered roots: a dense array that the collector walks, and an index from a start
// address to its newest registration, so that gc_remove_root takes O(1) expected time. A
// root<T> registers and removes itself at every move (a std::vector of them reallocating, or
// being cleared oldest first), so a search of the array made those quadratic.
//
// The same start may be registered more than once (docs/misuse.md), and gc_remove_root
// removes the newest registration: each entry links to the previous registration of its
// start. Removal moves the last entry into the freed position (the walk's order does not
// matter), and the one reference to that entry's old position, in the index or in the
// newer registration of its start, is updated.
//
//   index[s] == i  <=>  list[i] is the newest registration of s
//   list[i].prev == j  <=>  list[j] is the registration of list[i].start made just before it
//   bytes == the sum of list[k].bytes
//
// Every field is guarded by g_roots_mu.
constexpr size_t kNoRoot = SIZE_MAX;

struct Root {
  uintptr_t start;
  size_t bytes;
  size_t prev;  // position of the previous registration of `start`, or kNoRoot
};

struct RootSet {
  std::vector<Root> list;
  std::unordered_map<uintptr_t, size_t> index;
  size_t bytes = 0;

  void add(uintptr_t start, size_t n) {
    size_t pos = list.size();
    auto [it, fresh] = index.try_emplace(start, pos);
    list.push_back({start, n, fresh ? kNoRoot : it->second});
    it->second = pos;
    bytes += n;
  }

  // Removes the newest registration of `start` into *out; false if there is none.
  bool remove(uintptr_t start, Root* out) {
    auto it = index.find(start);
    if (it == index.end()) return false;
    size_t pos = it->second;
    *out = list[pos];
    if (out->prev == kNoRoot)
      index.erase(it);
    else
      it->second = out->prev;
    bytes -= out->bytes;
    size_t last = list.size() - 1;
    if (pos != last) {
      list[pos] = list[last];
      *reference_to(last) = pos;
    }
    list.pop_back();
    return true;
  }

  // The one link to position i: the index entry of its start, or the `prev` of the newer
  // registration of the same start. The walk is as long as that start's registrations
  // newer than i (none, unless a range is registered several times).
  size_t* reference_to(size_t i) {
    size_t* link = &index.find(list[i].start)->second;
    while (*link != i) link = &list[*link].prev;
    return link;
  }
};

std::mutex g_roots_mu;
// Made on first use, never destroyed: a root<T> at namespace scope registers itself from a
// static initialiser, which may run before this file's own (a static link).
RootSet& roots() {
  static auto* r = new RootSet();
  return *r;
}
}  // namespace

size_t scan_roots(GcWork& w) {
  std::lock_guard<std::mutex> g(g_roots_mu);
  size_t n = 0;
  for (const Root& r : roots().list) {
    scan_conservative(r.start, r.start + r.bytes, w);
    n += r.bytes;
  }
  return n;
}

void roots_for_each(const std::function<void(uintptr_t, size_t)>& f) {
  std::lock_guard<std::mutex> g(g_roots_mu);
  for (const Root& r : roots().list) f(r.start, r.bytes);
}

size_t roots_bytes() {
  std::lock_guard<std::mutex> g(g_roots_mu);
  return roots().bytes;
}

}  // namespace tricolor::internal

using namespace tricolor::internal;

extern "C" void gc_add_root(void* start, size_t bytes) {
  if (!start || bytes == 0) {
    log_error("gc_add_root(%p, %zu): %s; ignored", start, bytes, !start ? "NULL start" : "empty range");
    return;
  }
  // A range past the end of the address space (a size computed wrong: SIZE_MAX) would be
  // scanned until the scan faults.
  if (bytes > UINTPTR_MAX - reinterpret_cast<uintptr_t>(start)) {
    log_error("gc_add_root(%p, %zu): the range runs past the end of the address space; ignored",
              start, bytes);
    return;
  }
  std::lock_guard<std::mutex> g(g_roots_mu);
  roots().add(reinterpret_cast<uintptr_t>(start), bytes);
}

extern "C" void gc_remove_root(void* start) {
  std::lock_guard<std::mutex> g(g_roots_mu);
  // The most recent registration of this address goes (roots may be registered twice).
  Root r;
  if (!roots().remove(reinterpret_cast<uintptr_t>(start), &r)) {
    log_error("gc_remove_root(%p): no root registered at this address", start);
    return;
  }
  // Removing a root deletes its pointers: while marking they are shaded first (the
  // deletion half of the hybrid barrier, INV-BARRIER-1), or a pointer that only this
  // root held after a stack took it would be lost.
  if (__atomic_load_n(&tricolor_barrier_on, __ATOMIC_RELAXED)) {
    mark_state().busy.fetch_add(1, std::memory_order_seq_cst);
    GcWork w;
    scan_conservative(r.start, r.start + r.bytes, w);
    w.dispose();
    mark_state().busy.fetch_sub(1, std::memory_order_seq_cst);
  }
}
