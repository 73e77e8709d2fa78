// Fiber stack memory: see stack.h.
#include "os/stack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "trace/log.h"

namespace tricolor::internal {

namespace {

size_t page_size() {
  static const size_t ps = [] {
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? static_cast<size_t>(v) : size_t{4096};
  }();
  return ps;
}

// The pool of free stacks, all of one size (a request of another size empties it first).
struct StackPool {
  std::mutex mu;
  std::vector<StackMem> free;  // guarded by mu
  size_t size = 0;             // usable size of the pooled stacks (mu)
  size_t mapped = 0;           // stacks mapped and not unmapped (mu)
};
StackPool& g_pool = *new StackPool();  // never destroyed: stacks may be freed at exit

bool map_stack(size_t size, StackMem* out) {
  size_t guard = page_size();
  void* p = mmap(nullptr, size + guard, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    log_error("cannot map a fiber stack of %zu bytes: %s (each fiber stack is two mappings; "
              "see vm.max_map_count)", size, strerror(errno));
    return false;
  }
  if (mprotect(p, guard, PROT_NONE) != 0) {
    log_error("cannot protect the guard page of a fiber stack: %s", strerror(errno));
    munmap(p, size + guard);
    return false;
  }
  out->lo = reinterpret_cast<uintptr_t>(p) + guard;
  out->hi = out->lo + size;
  return true;
}

// The stacks that may be mapped at once: two mappings each, within vm.max_map_count less a
// reserve for everything else (see stack.h). SIZE_MAX when the limit cannot be read.
std::atomic<size_t> g_budget_override{0};  // test_set_stack_map_budget
size_t stack_budget() {
  if (size_t o = g_budget_override.load(std::memory_order_relaxed)) return o;
  static const size_t budget = [] {
    size_t max_maps = 0;
    if (FILE* f = fopen("/proc/sys/vm/max_map_count", "r")) {
      unsigned long v = 0;
      if (fscanf(f, "%lu", &v) == 1) max_maps = v;
      fclose(f);
    }
    if (max_maps == 0) return SIZE_MAX;
    size_t reserve = std::max<size_t>(max_maps / 8, 4096);
    return max_maps > reserve ? (max_maps - reserve) / 2 : size_t{0};
  }();
  return budget;
}

void unmap_stack(const StackMem& m) {
  size_t guard = page_size();
  munmap(reinterpret_cast<void*>(m.lo - guard), m.size() + guard);
}

}  // namespace

size_t stack_mem_round(size_t size) {
  size_t ps = page_size();
  if (size < (16 << 10)) size = 16 << 10;
  return (size + ps - 1) & ~(ps - 1);
}

bool stack_mem_alloc(size_t size, StackMem* out) {
  size = stack_mem_round(size);
  {
    std::lock_guard<std::mutex> g(g_pool.mu);
    if (g_pool.size != size) {
      for (const StackMem& m : g_pool.free) unmap_stack(m);
      g_pool.mapped -= g_pool.free.size();
      g_pool.free.clear();
      g_pool.size = size;
    }
    if (!g_pool.free.empty()) {
      *out = g_pool.free.back();
      g_pool.free.pop_back();
      return true;
    }
  }
  {
    std::lock_guard<std::mutex> g(g_pool.mu);
    if (g_pool.mapped >= stack_budget()) {
      log_error("cannot map another fiber stack: %zu are mapped, two mappings each, and the "
                "rest of vm.max_map_count is kept for the heap and the program", g_pool.mapped);
      return false;
    }
    g_pool.mapped++;  // counted first: threads mapping at once stay within the budget
  }
  if (!map_stack(size, out)) {
    std::lock_guard<std::mutex> g(g_pool.mu);
    g_pool.mapped--;
    return false;
  }
  return true;
}

void stack_mem_free(const StackMem* stacks, size_t n) {
  std::lock_guard<std::mutex> g(g_pool.mu);
  for (size_t i = 0; i < n; i++) {
    const StackMem& m = stacks[i];
    if (m.size() == g_pool.size && g_pool.free.size() < kStackPoolMax) {
      g_pool.free.push_back(m);
    } else {
      unmap_stack(m);
      g_pool.mapped--;
    }
  }
}

void stack_mem_release_pool() {
  std::lock_guard<std::mutex> g(g_pool.mu);
  for (const StackMem& m : g_pool.free) unmap_stack(m);
  g_pool.mapped -= g_pool.free.size();
  g_pool.free.clear();
  g_pool.free.shrink_to_fit();
}

size_t stack_mem_guard() { return page_size(); }

void test_set_stack_map_budget(size_t stacks) {
  g_budget_override.store(stacks, std::memory_order_relaxed);
}

size_t stack_mem_pooled() {
  std::lock_guard<std::mutex> g(g_pool.mu);
  return g_pool.free.size();
}

size_t stack_mem_mapped() {
  std::lock_guard<std::mutex> g(g_pool.mu);
  return g_pool.mapped;
}

}  // namespace tricolor::internal
