// gc_read_stats and gc_read_class_stats (lib/trace/stats.cc): the figures agree with each
// other, add up over cycles, and the per-class figures sum to the totals. Each test runs a
// fresh heap in a forked child (child.h); the parent checks what the child recorded.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>

#include "alloc/sizeclasses.h"
#include "child.h"
#include "gc/collector.h"
#include "tricolor/gc.h"
#include "workload.h"

using namespace tricolor::internal;
using namespace tricolor::test;

namespace {

struct Snapshot {
  gc_stats s;
  gc_class_stats cls[kNumSizeClasses];
  int nclasses = 0;
  uint64_t unix_before = 0, unix_after = 0;  // around the cycle that ended last
};

void take(Snapshot* out) {
  gc_read_stats(&out->s);
  out->nclasses = gc_read_class_stats(out->cls, kNumSizeClasses);
}

uint64_t now_unix_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

void start_heap() {
  gc_options o;
  gc_options_default(&o);
  o.procs = 2;
  o.gc_percent = -1;  // only the cycles the test asks for
  REQUIRE(gc_init(&o) == 0);
}

// Keeps `count` 48-byte objects reachable from a registered root, makes `garbage` more.
struct Keep {
  void* list = nullptr;
};
Keep* g_keep = nullptr;

// How many dropped objects a stale word on the scanned stack may keep for a cycle.
constexpr uint64_t kStaleWords = 16;

void allocate(size_t count, size_t garbage) {
  if (!g_keep) {
    g_keep = new Keep();
    gc_add_root(g_keep, sizeof *g_keep);
  }
  for (size_t i = 0; i < count; i++) {
    auto* r = static_cast<TraceRecord*>(gc_alloc(sizeof(TraceRecord), trace_record_type()));
    r->next = static_cast<TraceRecord*>(g_keep->list);
    g_keep->list = r;
  }
  for (size_t i = 0; i < garbage; i++) gc_alloc(sizeof(TraceRecord), trace_record_type());
}

}  // namespace

TEST_CASE("after a collection the heap figures are consistent", "[trace][stats]") {
  auto* a = shared_new<Snapshot>();
  ChildRun r = run_in_child([a] {
    start_heap();
    allocate(20000, 200000);
    a->unix_before = now_unix_ns();
    gc_collect();
    a->unix_after = now_unix_ns();
    take(a);
    gc_shutdown();
  });
  INFO(r.stderr_text);
  REQUIRE(r.exit_code == 0);
  const gc_stats& s = a->s;
  CHECK(s.heap_inuse >= s.heap_alloc);
  CHECK(s.heap_sys == s.heap_inuse + s.heap_idle);
  CHECK(s.heap_released <= s.heap_idle);
  CHECK(s.mallocs - s.frees == s.heap_objects);
  CHECK(s.heap_objects >= 20000);
  CHECK(s.heap_objects < 20000 + 1000);  // the garbage was swept
  CHECK(s.heap_alloc >= 20000 * sizeof(TraceRecord));
  CHECK(s.total_alloc >= 220000 * sizeof(TraceRecord));
  CHECK(s.num_gc == 1);
  CHECK(s.num_forced_gc == 1);
  CHECK(s.pause_total_ns > 0);
  CHECK(s.pause_ns[(s.num_gc + 255) % 256] == s.pause_total_ns);  // the one cycle's pauses
  CHECK(s.pause_max_ns <= s.pause_total_ns);
  CHECK(s.pause_end_ns[(s.num_gc + 255) % 256] >= a->unix_before);
  CHECK(s.pause_end_ns[(s.num_gc + 255) % 256] <= a->unix_after);
  CHECK(s.last_gc_ns >= a->unix_before);
  CHECK(s.last_gc_ns <= a->unix_after);
  CHECK(s.gc_cpu_fraction > 0);
  CHECK(s.gc_cpu_fraction < 1);
  CHECK(s.gc_cpu_ns >= s.assist_ns);
  // The mark phase's figures: its elapsed time lies within the cycle, and the workers', the
  // assists' and idle marking's CPU are parts of gc_cpu_ns.
  CHECK(s.mark_ns > 0);
  CHECK(s.mark_ns <= a->unix_after - a->unix_before);
  CHECK(s.mark_worker_ns + s.assist_ns + s.idle_mark_ns <= s.gc_cpu_ns);
  CHECK(s.procs == 2);
  CHECK(s.heap_marked >= 20000 * sizeof(TraceRecord));
  CHECK(s.next_gc == 0);  // GOGC off: no goal
  CHECK(s.gc_percent == -1);
  CHECK(s.stacks >= 1);
}

TEST_CASE("the statistics add up over cycles", "[trace][stats]") {
  constexpr int kCycles = 5;
  auto* snaps = shared_new<std::array<Snapshot, kCycles + 1>>();
  ChildRun r = run_in_child([snaps] {
    start_heap();
    take(&(*snaps)[0]);
    for (int i = 1; i <= kCycles; i++) {
      allocate(1000, 50000);
      gc_collect();
      take(&(*snaps)[i]);
    }
    gc_shutdown();
  });
  INFO(r.stderr_text);
  REQUIRE(r.exit_code == 0);
  uint64_t pause_sum = 0, pause_max = 0;
  for (int i = 1; i <= kCycles; i++) {
    const gc_stats &p = (*snaps)[i - 1].s, &s = (*snaps)[i].s;
    INFO("cycle " << i);
    CHECK(s.num_gc == p.num_gc + 1);
    CHECK(s.num_forced_gc == p.num_forced_gc + 1);
    CHECK(s.mallocs - p.mallocs == 51000);
    CHECK(s.total_alloc - p.total_alloc == 51000 * 48);
    // This round's garbage is freed, less the few objects a stale word on the stack may
    // keep for one more cycle (the stack is scanned conservatively), plus the few the
    // previous round kept that way.
    const gc_stats& s0 = (*snaps)[0].s;
    uint64_t garbage_so_far = 50000ull * uint64_t(i), kept_so_far = 1000ull * uint64_t(i);
    CHECK(s.frees - s0.frees <= garbage_so_far);
    CHECK(s.frees - s0.frees + kStaleWords >= garbage_so_far);
    CHECK(s.frees - p.frees + kStaleWords >= 50000);
    CHECK(s.heap_objects - s0.heap_objects >= kept_so_far);
    CHECK(s.heap_objects - s0.heap_objects <= kept_so_far + kStaleWords);
    CHECK(s.mallocs - s.frees == s.heap_objects);
    CHECK(s.heap_alloc - s0.heap_alloc ==  // one class: 48-byte objects
          (s.total_alloc - s0.total_alloc) - (s.frees - s0.frees) * 48);
    CHECK(s.heap_inuse >= s.heap_alloc);
    uint64_t this_pause = s.pause_total_ns - p.pause_total_ns;
    CHECK(s.pause_ns[(s.num_gc + 255) % 256] == this_pause);  // the ring, newest entry
    for (int j = 1; j < i; j++)                                // older entries kept
      CHECK(s.pause_ns[j - 1] == (*snaps)[j].s.pause_ns[j - 1]);
    pause_sum += this_pause;
    pause_max = std::max(pause_max, (*snaps)[i].s.pause_max_ns);
    CHECK(s.pause_end_ns[(s.num_gc + 255) % 256] > p.pause_end_ns[(p.num_gc + 255) % 256]);
    CHECK(s.gc_cpu_ns > p.gc_cpu_ns);
    CHECK(s.mark_ns > p.mark_ns);
    CHECK(s.mark_worker_ns >= p.mark_worker_ns);
    CHECK((s.mark_worker_ns - p.mark_worker_ns) + (s.assist_ns - p.assist_ns) +
              (s.idle_mark_ns - p.idle_mark_ns) <=
          s.gc_cpu_ns - p.gc_cpu_ns);
  }
  const gc_stats& last = (*snaps)[kCycles].s;
  CHECK(last.pause_total_ns == pause_sum);
  uint64_t ring_max = 0;
  for (int i = 0; i < kCycles; i++) ring_max = std::max(ring_max, last.pause_ns[i]);
  CHECK(last.pause_max_ns <= ring_max);  // the longest single pause is within a cycle's sum
}

TEST_CASE("per-size-class statistics sum to the heap totals", "[trace][stats]") {
  auto* a = shared_new<Snapshot>();
  ChildRun r = run_in_child([a] {
    start_heap();
    allocate(30000, 100000);
    for (int i = 0; i < 2000; i++) gc_alloc_noscan(100 + i % 900);  // several classes
    for (int i = 0; i < 8; i++) gc_alloc(100000, nullptr);            // large objects
    gc_collect();
    take(a);
    gc_shutdown();
  });
  INFO(r.stderr_text);
  REQUIRE(r.exit_code == 0);
  const gc_stats& s = a->s;
  REQUIRE(a->nclasses == kNumSizeClasses);
  uint64_t mallocs = 0, frees = 0, objects = 0, small_bytes = 0, small_span_bytes = 0;
  for (int c = 0; c < kNumSizeClasses; c++) {
    const gc_class_stats& k = a->cls[c];
    INFO("class " << c);
    CHECK(k.size_class == uint32_t(c));
    CHECK(k.object_size == kClassToSize[c]);
    CHECK(k.mallocs >= k.frees);
    mallocs += k.mallocs;
    frees += k.frees;
    objects += k.objects;
    if (c > 0) {
      uint64_t span_bytes = uint64_t(kClassToNPages[c]) * kPageSize;
      uint64_t per_span = span_bytes / k.object_size;
      CHECK(k.objects <= k.spans * per_span);
      CHECK(k.bytes_free == (k.spans * per_span - k.objects) * k.object_size);
      small_bytes += k.objects * k.object_size;
      small_span_bytes += k.spans * span_bytes;
    }
  }
  // No tiny allocations in this test, so the class counts are the whole counts.
  CHECK(mallocs == s.mallocs);
  CHECK(frees == s.frees);
  CHECK(objects == s.heap_objects);
  CHECK(mallocs - frees == objects);
  // Large objects: every dropped one was freed; the heap bytes are the small classes' plus
  // whole pages for the large ones.
  CHECK(s.heap_alloc >= small_bytes);
  CHECK(s.heap_inuse >= small_span_bytes);
  CHECK(s.heap_inuse - small_span_bytes == s.heap_alloc - small_bytes);  // large: whole pages
}
