// See page_source.h.
#include "os/page_source.h"

#include <mimalloc.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace tricolor::internal {

void* os_arena_alloc(size_t bytes) {
  // Not mi_zalloc_aligned: mimalloc 2.0 clears such a block with memset, which makes the
  // whole arena resident at once (a 64 MiB floor on every program's RSS). The heap needs
  // the arena zeroed and not resident: MADV_DONTNEED gives both on Linux (mimalloc's
  // memory is private and anonymous: dropped pages read back as zero on first touch).
  void* p = mi_malloc_aligned(bytes, kArenaBytes);
  if (p && madvise(p, bytes, MADV_DONTNEED) != 0) memset(p, 0, bytes);
  return p;
}

void os_arena_free(void* p, size_t bytes) {
  (void)bytes;
  mi_free(p);
}

void os_release(void* p, size_t bytes) {
  // MADV_DONTNEED: the pages are dropped at once and read back as zero (Go's default on
  // Linux since 1.16).
  madvise(p, bytes, MADV_DONTNEED);
}

void* os_reserve_zeroed(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void os_unreserve(void* p, size_t bytes) { munmap(p, bytes); }

size_t os_backable_bytes() {
  static const size_t bytes = [] {
    struct sysinfo si;
    if (sysinfo(&si) != 0) return SIZE_MAX;
    unsigned __int128 b = (unsigned __int128)(si.totalram + si.totalswap) * si.mem_unit;
    return b > SIZE_MAX ? SIZE_MAX : size_t(b);
  }();
  return bytes;
}

size_t os_rss_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace tricolor::internal
