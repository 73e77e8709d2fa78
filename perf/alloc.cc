// alloc: what one allocation costs, with no collection in the measured window.
//
// Stresses the allocation fast path (tricolor: mcache span with its 64-bit alloc cache, the
// tiny allocator for noscan objects under 16 B, the mcentral refill, the mheap for 100 KiB
// objects) against mi_malloc, glibc malloc and bdwgc's GC_MALLOC / GC_MALLOC_ATOMIC.
//
// For each size (8, 16, 64, 256, 4096 B and 100 KiB), kind (scan: may hold pointers;
// noscan: pointer-free) and thread count, every thread allocates a batch of objects in a
// timed window, then the batch is reclaimed outside the window (free for malloc and
// mimalloc; a full collection for tricolor and bdwgc, whose automatic collection is off:
// gc_options.gc_percent = -1 and GC_disable()). One warm-up round, then `--rounds` timed
// rounds. The figure, ns_per_obj, is the CPU time a thread spent in its timed windows per
// object it allocated, less what reading the clocks costs (measure_clock_cost); CPU time,
// so that time descheduled on a busy machine does not count; with 2 threads, perfect
// scaling gives the same figure as 1 thread. wall_ns_per_obj is the elapsed time of the
// windows per object of one thread, less the clocks' cost likewise.
//
// tricolor clears every object; malloc, mi_malloc and GC_MALLOC_ATOMIC do not (that shows
// most from 1 KiB up). --cleared gives every implementation the same work: the peers' objects
// come cleared too, from their own clearing calls (mi_zalloc, calloc; GC_MALLOC clears,
// GC_MALLOC_ATOMIC is followed by a memset), and the names read alloc-cleared/... (runner
// key alloc-cleared). Scan objects of tricolor carry a precise type (every word a
// pointer); the peers ignore the kind except bdwgc (GC_MALLOC vs GC_MALLOC_ATOMIC).
//
//   alloc --impl=tricolor|bdwgc|malloc|mimalloc [--threads=1] [--sizes=8,16,...]
//         [--rounds=N] [--batch-mb=N | --batch-kb=N] [--mix=N] [--cleared] [--quick]
//
// --mix=N: one scan object in N is of a second pointer layout (sizes of 16 B and more).
//
// With the default batches (16 or 32 MiB per thread) every object is a new cache line from
// memory, as in a program that allocates a lot; with --batch-kb=64 (the runner's alloc-hot)
// the batch stays in the caches, so the figure is the cost of the allocation path from a
// cached span (refills included, one per span).
#include <barrier>
#include <thread>

#include "harness.h"

using namespace perf;

namespace {

struct Config {
  size_t size;
  bool scan;
  int threads;
  int rounds;
  size_t batch_bytes;
  size_t mix = 0;  // scan: every mix-th object of the second layout (0: none)
  bool cleared = false;  // --cleared: every implementation hands out cleared memory
};

const gc_type* g_word_type = nullptr;  // tricolor: one pointer word, repeated
const gc_type* g_alt_type = nullptr;   // tricolor, --mix: a pointer in every second word

struct Figures {
  double cpu_ns_per_obj;   // CPU time of a thread per object it allocated (the headline)
  double wall_ns_per_obj;  // elapsed time of the window per object of one thread
  // x86-64: time-stamp counter ticks per object of thread 0's loop alone (no clock read
  // inside it), the fastest round and the median one: the steadiest figure for comparing
  // two builds of one allocator on a busy machine (the fastest round is the one least
  // disturbed). 0 elsewhere.
  double tsc_min_per_obj = 0;
  double tsc_med_per_obj = 0;
};

inline uint64_t tsc() {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return 0;
#endif
}

// What reading the two clocks around an empty window costs on this thread (medians of 101
// windows): the thread CPU clock is a system call (about 0.5 us on a virtual machine),
// which a window of 256 objects of 256 B would otherwise count as 2 ns per object, for
// every implementation alike. Each round's figures have it taken off.
struct ClockCost {
  uint64_t cpu_ns = 0;
  uint64_t wall_ns = 0;
};
ClockCost measure_clock_cost() {
  std::vector<uint64_t> cpu, wall;
  for (int i = 0; i < 101; i++) {
    uint64_t t0 = now_ns(), c0 = thread_cpu_ns();
    uint64_t c1 = thread_cpu_ns(), t1 = now_ns();
    cpu.push_back(c1 - c0);
    wall.push_back(t1 - t0);
  }
  std::sort(cpu.begin(), cpu.end());
  std::sort(wall.begin(), wall.end());
  return {cpu[50], wall[50]};
}

// The timed loops, each a function of its own: inlined into the round's lambda, the
// loops' registers competed with the lambda's, and a change to one allocation path moved
// the other's loop bound or type to the stack (one build's 8 B scan loop took 4.2 ticks
// per object against 3.9 for the same fast path).
template <class M>
[[gnu::noinline]] void fill_scan(void** out, size_t n, size_t size, const gc_type* type) {
  for (size_t i = 0; i < n; i++) out[i] = M::alloc(size, type);
}
// --mix=N: every Nth object is of a second pointer layout of the same size (tricolor keeps
// the pointer bits of such a span object by object; the peers ignore types).
template <class M>
[[gnu::noinline]] void fill_scan_mixed(void** out, size_t n, size_t size, const gc_type* type,
                                       const gc_type* other, size_t every) {
  for (size_t i = 0, k = 0; i < n; i++) {
    out[i] = M::alloc(size, ++k == every ? other : type);
    if (k == every) k = 0;
  }
}
template <class M>
[[gnu::noinline]] void fill_noscan(void** out, size_t n, size_t size) {
  for (size_t i = 0; i < n; i++) out[i] = M::alloc_noscan(size);
}

// --cleared: an object cleared as the implementation's own call clears it (tricolor and
// GC_MALLOC always do).
template <class M>
inline void* alloc_cleared(size_t size, const gc_type* type, bool scan) {
  if constexpr (M::kImpl == Impl::kMimalloc) {
    return mi_zalloc(size);
  } else if constexpr (M::kImpl == Impl::kMalloc) {
    return __libc_calloc(1, size);
  } else if constexpr (M::kImpl == Impl::kTricolor) {
    return scan ? M::alloc(size, type) : M::alloc_noscan(size);
  } else {
    if (scan) return M::alloc(size, type);  // GC_MALLOC
    void* p = M::alloc_noscan(size);        // GC_MALLOC_ATOMIC: not cleared
    if (p) memset(p, 0, size);
    return p;
  }
}
template <class M>
[[gnu::noinline]] void fill_cleared(void** out, size_t n, size_t size, const gc_type* type,
                                    bool scan) {
  for (size_t i = 0; i < n; i++) out[i] = alloc_cleared<M>(size, type, scan);
}

template <class M>
Figures run_config(const Config& c) {
  size_t per_thread = std::clamp<size_t>(c.batch_bytes / c.size, 256, size_t(1) << 20);
  std::vector<std::vector<void*>> batches(c.threads, std::vector<void*>(per_thread));
  std::barrier sync(c.threads);
  std::atomic<uint64_t> timed_ns{0};      // thread 0's elapsed time in the windows
  std::atomic<uint64_t> timed_cpu_ns{0};  // every thread's CPU time in the windows
  std::vector<double> tsc_per_obj;        // thread 0, each timed round

  auto wait = [&] {
    typename M::BlockingScope b;  // a tricolor thread waiting here must not hold up a cycle
    sync.arrive_and_wait();
  };
  auto reclaim = [&](int tid) {
    if constexpr (M::kManual) {
      for (void* p : batches[tid]) M::release(p);
      wait();
    } else {
      wait();  // every batch is complete
      if (tid == 0) {
        if constexpr (M::kImpl == Impl::kTricolor) {
          gc_collect();
        } else {
#if PERF_HAVE_BDWGC
          GC_enable();
          GC_gcollect();
          GC_disable();
#endif
        }
      }
      wait();
    }
  };
  auto body = [&](int tid) {
    typename M::ThreadScope scope;
    std::vector<void*>& batch = batches[tid];
    const size_t size = c.size;
    const ClockCost clock = measure_clock_cost();
    for (int round = 0; round <= c.rounds; round++) {
      wait();
      // Arguments the loops keep in registers: the vector's buffer and length, reached
      // through references, were loaded again after every store of an object (every
      // implementation paid about a cycle per object for it).
      void** out = batch.data();
      const size_t n = per_thread;
      uint64_t t0 = now_ns(), c0 = thread_cpu_ns();
      uint64_t k0 = tsc();
      if (c.cleared)
        fill_cleared<M>(out, n, size, g_word_type, c.scan);
      else if (c.scan && c.mix)
        fill_scan_mixed<M>(out, n, size, g_word_type, g_alt_type, c.mix);
      else if (c.scan)
        fill_scan<M>(out, n, size, g_word_type);
      else
        fill_noscan<M>(out, n, size);
      uint64_t k1 = tsc();
      uint64_t cpu = thread_cpu_ns() - c0;
      if (tid == 0 && round > 0) tsc_per_obj.push_back(double(k1 - k0) / double(n));
      if (round > 0) timed_cpu_ns += cpu > clock.cpu_ns ? cpu - clock.cpu_ns : 0;  // round 0 warms up
      wait();
      uint64_t wall = now_ns() - t0;
      if (tid == 0 && round > 0) timed_ns += wall > clock.wall_ns ? wall - clock.wall_ns : 0;
      for (void* p : batch)
        if (!p) Options::die("allocation of %zu bytes failed", size);
      reclaim(tid);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < c.threads; t++) workers.emplace_back(body, t);
  body(0);
  {
    typename M::BlockingScope b;
    for (auto& w : workers) w.join();
  }
  double objects = double(per_thread * size_t(c.rounds));
  Figures f{double(timed_cpu_ns.load()) / c.threads / objects, double(timed_ns.load()) / objects};
  if (!tsc_per_obj.empty() && tsc() != 0) {
    std::sort(tsc_per_obj.begin(), tsc_per_obj.end());
    f.tsc_min_per_obj = tsc_per_obj.front();
    f.tsc_med_per_obj = tsc_per_obj[tsc_per_obj.size() / 2];
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  Options o(argc, argv);
  Impl impl = parse_impl(o);
  int threads = int(o.num("threads", 1));
  int rounds = int(o.num("rounds", o.quick() ? 3 : 10));
  size_t batch_bytes = size_t(o.num("batch-mb", o.quick() ? 16 : 32)) << 20;
  // --batch-kb: small batches whose objects stay in the CPU's caches (with many rounds):
  // the figure is then the allocation path itself, not the memory it streams through.
  if (o.num("batch-kb", 0) > 0) batch_bytes = size_t(o.num("batch-kb", 0)) << 10;
  std::vector<size_t> sizes;
  {
    std::string s = o.str("sizes", "8,16,64,256,4096,102400");
    for (size_t pos = 0; pos < s.size();) {
      size_t comma = s.find(',', pos);
      if (comma == std::string::npos) comma = s.size();
      sizes.push_back(size_t(std::stoul(s.substr(pos, comma - pos))));
      pos = comma + 1;
    }
  }
  InitParams ip;
  ip.gc_percent = -1;  // allocation only: collections happen between rounds, untimed
  init_impl(impl, ip);
  if (impl == Impl::kTricolor) {
    size_t off = 0;
    g_word_type = gc_type_new("Word", sizeof(void*), &off, 1);
    size_t second = sizeof(void*);
    g_alt_type = gc_type_new("EveryOtherWord", 2 * sizeof(void*), &second, 1);
  }
  // --mix=N (N >= 2): scan objects of two layouts, as a program of several object types of
  // one size; the second layout tiles 16 B, so sizes under 16 B keep one layout.
  const size_t mix = size_t(o.num("mix", 0));
  if (mix == 1) Options::die("--mix=N takes N >= 2 (one object in N of the second layout)");
  const bool cleared = o.has("cleared");
  if (cleared && mix) Options::die("--cleared and --mix do not go together");

  for (size_t size : sizes) {
    for (bool scan : {true, false}) {
      Config c{size, scan, threads, rounds, batch_bytes};
      if (scan && size >= 16) c.mix = mix;
      c.cleared = cleared;
      uint64_t t0 = now_ns();
      Figures f = dispatch(impl, [&]<class M>() { return run_config<M>(c); });
      uint64_t wall = now_ns() - t0;
      char name[64];
      char kind[32];
      if (c.mix)
        snprintf(kind, sizeof kind, "scan-mix%zu", c.mix);
      else
        snprintf(kind, sizeof kind, "%s", scan ? "scan" : "noscan");
      snprintf(name, sizeof name, "%s/%zu/%s/t%d", cleared ? "alloc-cleared" : "alloc", size, kind,
               threads);
      report(name, impl, wall, kv("ns_per_obj", f.cpu_ns_per_obj) + " " +
                                   kv("wall_ns_per_obj", f.wall_ns_per_obj) + " " +
                                   kv("tsc_min_per_obj", f.tsc_min_per_obj) + " " +
                                   kv("tsc_med_per_obj", f.tsc_med_per_obj));
    }
  }
  return 0;
}
