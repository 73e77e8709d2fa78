// Load and limits: several threads fill the heap up to a small memory limit. Every thread
// must come to an allocation that returns NULL after the out-of-memory handler ran (never
// a crash, never memory past the limit), every object they keep must stay intact, and
// once they let go of their objects the same threads must be able to fill the heap again.
//
//   torture_limits [ROUNDS]   (default 3 fill/release rounds)
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "tricolor/gc.h"

namespace {

constexpr int kThreads = 4;
constexpr size_t kLimit = 48u << 20;  // 48 MiB
constexpr int kSlots = 8192;          // objects a thread can keep (a registered root)

std::atomic<uint64_t> g_oom_calls{0};
std::atomic<int> g_failures{0};

void on_oom(size_t request) {
  (void)request;
  g_oom_calls.fetch_add(1);
}

#define EXPECT(cond, ...)                                         \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "LIMITS FAILURE: %s: ", #cond);             \
      fprintf(stderr, __VA_ARGS__);                               \
      fputc('\n', stderr);                                        \
      g_failures.fetch_add(1);                                    \
    }                                                             \
  } while (0)

uint8_t fill_byte(int thread, int slot) { return uint8_t(thread * 31 + slot * 7 + 1); }

struct Result {
  int kept = 0;         // objects held when the heap was full
  int nulls = 0;        // allocations that returned NULL
  size_t bytes = 0;     // bytes held
};

// Fills until `nulls_wanted` allocations failed; sizes cycle through small, medium and
// large objects. Keeps everything in `slots`.
Result fill(int thread, void** slots, int nulls_wanted) {
  Result r;
  static const size_t kSizes[] = {48, 1024, 8000, 40000, 200000};
  for (int i = 0; i < kSlots && r.nulls < nulls_wanted; i++) {
    size_t size = kSizes[i % 5];
    void* p = (i % 3 == 0) ? gc_alloc(size, nullptr) : gc_alloc_noscan(size);
    if (!p) {
      r.nulls++;
      i--;
      if (r.nulls > 1000) break;
      continue;
    }
    memset(p, fill_byte(thread, r.kept), size);
    slots[r.kept++] = p;
    r.bytes += size;
  }
  return r;
}

// Every kept object still holds its bytes.
int check(int thread, void** slots, int kept) {
  int bad = 0;
  for (int i = 0; i < kept; i++) {
    uint8_t* p = static_cast<uint8_t*>(slots[i]);
    size_t n = gc_size(p);
    if (!n || p[0] != fill_byte(thread, i) || p[n > 48 ? 47 : n - 1] != fill_byte(thread, i)) bad++;
  }
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 3;
  gc_options o;
  gc_options_default(&o);
  o.gc_percent = 100;
  if (gc_init(&o) != 0) return 1;
  gc_set_oom_handler(on_oom);
  size_t old = gc_set_memory_limit(kLimit);
  EXPECT(old == o.memory_limit, "gc_set_memory_limit returned %zu", old);

  std::vector<void**> slots(kThreads);
  for (auto& s : slots) {
    s = static_cast<void**>(calloc(kSlots, sizeof(void*)));
    gc_add_root(s, kSlots * sizeof(void*));
  }
  uint64_t total_nulls = 0;
  for (int round = 0; round < rounds; round++) {
    Result res[kThreads];
    uint64_t oom0 = g_oom_calls.load();
    std::vector<std::thread> ths;
    for (int t = 0; t < kThreads; t++)
      ths.emplace_back([&, t] {
        gc_thread_attach();
        res[t] = fill(t, slots[t], 3);
        gc_thread_detach();
      });
    gc_blocking_begin();
    for (auto& th : ths) th.join();
    gc_blocking_end();

    gc_stats s;
    gc_read_stats(&s);
    uint64_t nulls = 0;
    size_t held = 0;
    for (int t = 0; t < kThreads; t++) {
      EXPECT(res[t].nulls >= 3, "round %d: thread %d never got NULL (kept %d objects, %zu bytes)",
             round, t, res[t].kept, res[t].bytes);
      EXPECT(res[t].kept > 0, "round %d: thread %d kept nothing", round, t);
      int bad = check(t, slots[t], res[t].kept);
      EXPECT(bad == 0, "round %d: thread %d: %d kept objects were damaged", round, t, bad);
      nulls += uint64_t(res[t].nulls);
      held += res[t].bytes;
    }
    uint64_t oom = g_oom_calls.load() - oom0;
    EXPECT(oom == nulls, "round %d: %" PRIu64 " NULL returns but %" PRIu64 " OOM handler calls", round,
           nulls, oom);
    EXPECT(s.heap_inuse <= kLimit, "round %d: heap_inuse %" PRIu64 " passed the limit %zu", round,
           s.heap_inuse, kLimit);
    EXPECT(held >= kLimit / 4, "round %d: only %zu bytes held under a %zu-byte limit", round, held,
           kLimit);
    printf("round %d: %d threads filled %.1f MiB of a %.0f MiB limit (heap in use %.1f MiB), "
           "%" PRIu64 " NULL returns, %" PRIu64 " OOM handler calls, %u GC cycles so far\n",
           round, kThreads, held / 1048576.0, kLimit / 1048576.0, s.heap_inuse / 1048576.0, nulls,
           oom, s.num_gc);
    total_nulls += nulls;

    // Release everything: the next round must fill the heap again.
    for (auto* sl : slots) memset(sl, 0, kSlots * sizeof(void*));
    gc_collect();
    gc_read_stats(&s);
    EXPECT(s.heap_alloc < kLimit / 4, "round %d: %" PRIu64 " bytes still allocated after release",
           round, s.heap_alloc);
  }
  // Lifting the limit: a large allocation that failed before succeeds now.
  gc_set_memory_limit(0);
  void* big = gc_alloc_noscan(kLimit * 2);
  EXPECT(big != nullptr, "an allocation of %zu bytes failed without a limit", kLimit * 2);
  gc_set_oom_handler(nullptr);
  printf("limits: %d rounds, %" PRIu64 " NULL returns in all, %d failures\n", rounds, total_nulls,
         g_failures.load());
  return g_failures.load() == 0 ? 0 : 1;
}
