// The verifiers themselves: a collector bug planted at mark termination (the mark bit of a
// reachable object cleared, with the world stopped) is reported by the heap verifier
// (INV-MARK-1: a marked object points to an unmarked one) and by the check-mark mode (a
// re-mark from the roots reaches an unmarked object). The bit is set again before the
// sweep, so the heap stays whole for the tests that follow.
#include <catch2/catch.hpp>

#include <vector>

#include "gc/checkmark.h"
#include "gc/collector.h"
#include "gc/testing.h"
#include "support/heap.h"
#include "tricolor/gc.h"

using namespace tricolor::internal;
using namespace tricolor::test;

namespace {

struct Plant {
  void* holder = nullptr;  // reachable and marked; its first word names the victim
  void* victim = nullptr;  // reachable; its mark bit is cleared
  bool ran = false;
  uint64_t violations = 0;
  std::vector<VerifyEdge> edges;
  CheckmarkResult checkmark;
};

// At mark termination, world stopped.
void plant_unmarked_victim(void* arg) {
  auto* p = static_cast<Plant*>(arg);
  test_set_mark(p->victim, false);
  p->violations = verify_heap(true, &p->edges);
  p->checkmark = checkmark_heap(/*abort_on_miss=*/false);
  test_set_mark(p->victim, true);
  p->ran = true;
}

void* g_roots[2];  // a registered root: the holder and the victim

}  // namespace

TEST_CASE("the heap verifier and the check-mark mode report a reachable object left unmarked",
          "[gc][verify]") {
  ensure_heap();
  static bool registered = (gc_add_root(g_roots, sizeof g_roots), true);
  (void)registered;
  auto* holder = static_cast<void**>(gc_alloc(64, nullptr));  // conservative: every word
  void* victim = gc_alloc(64, nullptr);
  gc_write_ptr(&holder[0], victim);
  g_roots[0] = holder;
  g_roots[1] = victim;

  Plant p;
  p.holder = holder;
  p.victim = victim;
  test_at_mark_termination(plant_unmarked_victim, &p);
  gc_collect();
  REQUIRE(p.ran);

  CHECK(p.violations >= 1);
  bool named = false;
  for (const VerifyEdge& e : p.edges)
    named |= e.from == reinterpret_cast<uintptr_t>(holder) &&
             e.to == reinterpret_cast<uintptr_t>(victim);
  CHECK(named);
  CHECK(p.checkmark.missed >= 1);

  // The plant was undone before the sweep: the victim survives, and the cycles after it
  // find nothing.
  uint64_t failures = verify_failures();
  gc_collect();
  CHECK(gc_base(victim) == victim);
  CHECK(holder[0] == victim);
  CHECK(verify_failures() == failures);
  g_roots[0] = g_roots[1] = nullptr;
}
