// Registered roots (gc_add_root / gc_remove_root): ranges scanned conservatively at mark
// start and again at mark termination (they may be written with plain stores).
#include <algorithm>
#include <mutex>
#include <vector>

#include "gc/collector.h"
#include "gc/mark.h"
#include "tricolor/gc.h"
#include "trace/log.h"

namespace tricolor::internal {
namespace {
struct Root {
  uintptr_t start;
  size_t bytes;
};
std::mutex g_roots_mu;
// Made on first use, never destroyed: a root<T> at namespace scope registers itself from a
// static initialiser, which may run before this file's own (a static link).
std::vector<Root>& roots_list() {
  static auto* v = new std::vector<Root>();
  return *v;
}
}  // namespace

size_t scan_roots(GcWork& w) {
  std::lock_guard<std::mutex> g(g_roots_mu);
  size_t n = 0;
  for (const Root& r : roots_list()) {
    scan_conservative(r.start, r.start + r.bytes, w);
    n += r.bytes;
  }
  return n;
}

void roots_for_each(const std::function<void(uintptr_t, size_t)>& f) {
  std::lock_guard<std::mutex> g(g_roots_mu);
  for (const Root& r : roots_list()) f(r.start, r.bytes);
}

size_t roots_bytes() {
  std::lock_guard<std::mutex> g(g_roots_mu);
  size_t n = 0;
  for (const Root& r : roots_list()) n += r.bytes;
  return n;
}

}  // namespace tricolor::internal

using namespace tricolor::internal;

extern "C" void gc_add_root(void* start, size_t bytes) {
  if (!start || bytes == 0) {
    log_error("gc_add_root(%p, %zu): empty range ignored", start, bytes);
    return;
  }
  std::lock_guard<std::mutex> g(g_roots_mu);
  roots_list().push_back({reinterpret_cast<uintptr_t>(start), bytes});
}

extern "C" void gc_remove_root(void* start) {
  std::lock_guard<std::mutex> g(g_roots_mu);
  // The most recent registration of this address goes (roots may be registered twice).
  for (auto it = roots_list().rbegin(); it != roots_list().rend(); ++it) {
    if (it->start == reinterpret_cast<uintptr_t>(start)) {
      Root r = *it;
      roots_list().erase(std::next(it).base());
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
      return;
    }
  }
  log_error("gc_remove_root(%p): no root registered at this address", start);
}
