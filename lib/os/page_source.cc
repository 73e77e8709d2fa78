// See page_source.h.
#include "os/page_source.h"

#include <mimalloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>

namespace tricolor::internal {

void* os_arena_alloc(size_t bytes) {
  // mimalloc serves an allocation this large straight from fresh OS pages, which are
  // untouched (so not resident) until the heap hands them out; zalloc costs no memset
  // then, and zeroes if mimalloc ever reuses memory.
  return mi_zalloc_aligned(bytes, kArenaBytes);
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

size_t os_rss_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace tricolor::internal
