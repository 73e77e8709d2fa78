// Fiber stack memory (lib/os/stack.cc): sizes, the guard page, the pool.
#include <catch2/catch.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "os/stack.h"

using namespace tricolor::internal;

TEST_CASE("a fiber stack is page-rounded, writable, and has a guard page below it",
          "[sched][stack]") {
  size_t ps = size_t(sysconf(_SC_PAGESIZE));
  CHECK(stack_mem_round(1) == 16 << 10);
  CHECK(stack_mem_round((256 << 10) + 1) == (256 << 10) + ps);
  StackMem m;
  REQUIRE(stack_mem_alloc(256 << 10, &m));
  CHECK(m.size() == 256 << 10);
  memset(reinterpret_cast<void*>(m.lo), 0xab, m.size());  // every byte is usable
  // The page below is inaccessible: mincore says it is mapped, mprotect can read its state
  // only through /proc, so probe it with msync's cousin: madvise on a PROT_NONE page works,
  // and a write would fault. Check the mapping instead.
  unsigned char vec = 0;
  CHECK(mincore(reinterpret_cast<void*>(m.lo - ps), ps, &vec) == 0);  // part of our mapping
  FILE* f = fopen("/proc/self/maps", "r");
  REQUIRE(f);
  char line[512];
  bool guard_found = false;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3) continue;
    if (lo == m.lo - ps && hi == m.lo) guard_found = strncmp(perms, "---", 3) == 0;
  }
  fclose(f);
  CHECK(guard_found);
  stack_mem_free(&m, 1);
  CHECK(stack_mem_pooled() >= 1);
  stack_mem_release_pool();
  CHECK(stack_mem_pooled() == 0);
}

TEST_CASE("freed fiber stacks are reused before new ones are mapped", "[sched][stack]") {
  StackMem a, b;
  REQUIRE(stack_mem_alloc(64 << 10, &a));
  size_t mapped = stack_mem_mapped();
  stack_mem_free(&a, 1);
  REQUIRE(stack_mem_alloc(64 << 10, &b));
  CHECK(b.lo == a.lo);
  CHECK(stack_mem_mapped() == mapped);
  stack_mem_free(&b, 1);
  stack_mem_release_pool();
}
