// The benchmark harness shared by every program in perf/: command-line options, the four
// memory managers a benchmark can run on (`--impl=tricolor|bdwgc|malloc|mimalloc`), thread
// set-up for each of them, and the RESULT line that perf/compare.py reads.
//
// A benchmark is written once as a template over a memory manager `M`:
//
//   M::alloc(bytes, type)   an object that may hold pointers (tricolor: precise type)
//   M::alloc_noscan(bytes)  a pointer-free object
//                           (tricolor and GC_MALLOC clear memory; malloc, mi_malloc and
//                           GC_MALLOC_ATOMIC do not: benchmarks initialise what they use)
//   M::store(slot, value)   a heap pointer store (tricolor: gc_write_ptr, the barrier)
//   M::release(p)           free for the manual managers, nothing for the collectors
//   M::poll()               a safepoint poll in loops that do not allocate (tricolor:
//                           gc_safepoint, one relaxed load and a branch; as a compiler of
//                           a collected language would put in loops and function entries)
//   M::kManual              true when the benchmark must free what it drops
//   M::ThreadScope          RAII: attach / register the calling thread
//   M::BlockingScope        RAII: a region that waits (join, barrier) without heap access
//
// Output: one line per measurement,
//   RESULT name=<bench/variant> impl=<impl> time_s=.. cpu_s=.. peak_rss_kb=.. gc_cycles=..
//          max_pause_us=.. p99_pause_us=.. pause_total_ms=.. gc_cpu=.. [extra key=value ...]
// Every run is its own process, so peak_rss_kb (VmHWM, see below) is this run's peak and
// cpu_s is the CPU time of the whole process so far (every thread, collector included): on
// a shared machine it is steadier than the elapsed time_s.
//
// The glibc peer calls __libc_malloc / __libc_free: libtricolor loads libmimalloc, whose
// shared library exports malloc and may interpose it for the whole process depending on the
// link order; calling glibc's entry points directly keeps the peer honest either way.
#ifndef TRICOLOR_PERF_HARNESS_H_
#define TRICOLOR_PERF_HARNESS_H_

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <mimalloc.h>

#include "tricolor/gc.h"

#if PERF_HAVE_BDWGC
#define GC_THREADS 1
#define GC_NO_THREAD_REDIRECTS 1
#include <gc/gc.h>
#endif

extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void __libc_free(void*);

namespace perf {

// ---- Options --------------------------------------------------------------------

class Options {
 public:
  Options(int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
      std::string a = argv[i];
      if (a.rfind("--", 0) != 0) die("unexpected argument '%s' (options are --key=value)", argv[i]);
      size_t eq = a.find('=');
      if (eq == std::string::npos) kv_.push_back({a.substr(2), "1"});
      else kv_.push_back({a.substr(2, eq - 2), a.substr(eq + 1)});
    }
  }
  bool has(const char* key) const {
    for (auto& p : kv_) if (p.first == key) return true;
    return false;
  }
  std::string str(const char* key, const char* def) const {
    for (auto& p : kv_) if (p.first == key) return p.second;
    return def;
  }
  long num(const char* key, long def) const {
    std::string s = str(key, "");
    if (s.empty()) return def;
    char* end = nullptr;
    long v = strtol(s.c_str(), &end, 10);
    if (*end) die("--%s=%s is not a number", key, s.c_str());
    return v;
  }
  bool quick() const { return has("quick"); }

  [[noreturn]] static void die(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
  }

 private:
  std::vector<std::pair<std::string, std::string>> kv_;
};

// ---- Clocks and resources -------------------------------------------------------

inline uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Peak resident set of this process: VmHWM from /proc/self/status, the high-water mark of
// this program's own address space. (getrusage's ru_maxrss is not used: Linux carries it
// over fork and exec, so a child of a large parent, such as the Python runner, reports
// the parent's peak.) Falls back to ru_maxrss where /proc is missing.
inline long peak_rss_kb() {
  if (FILE* f = fopen("/proc/self/status", "r")) {
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    if (kb >= 0) return kb;
  }
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// CPU time of the calling thread: micro-measurements use it, so that on a shared machine
// the time the thread spends descheduled is not counted.
inline uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline uint64_t process_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// xorshift64*: cheap, deterministic random numbers for the churn benchmarks.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ? seed : 88172645463325252ull) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  uint64_t below(uint64_t n) { return next() % n; }
};

// ---- Implementations ------------------------------------------------------------

enum class Impl { kTricolor, kBdwgc, kMalloc, kMimalloc };

inline const char* impl_name(Impl i) {
  switch (i) {
    case Impl::kTricolor: return "tricolor";
    case Impl::kBdwgc: return "bdwgc";
    case Impl::kMalloc: return "malloc";
    case Impl::kMimalloc: return "mimalloc";
  }
  return "?";
}

inline Impl parse_impl(const Options& o) {
  std::string s = o.str("impl", "tricolor");
  if (s == "tricolor") return Impl::kTricolor;
  if (s == "bdwgc") {
#if PERF_HAVE_BDWGC
    return Impl::kBdwgc;
#else
    Options::die("this build has no bdwgc (install libgc-dev and reconfigure)");
#endif
  }
  if (s == "malloc") return Impl::kMalloc;
  if (s == "mimalloc") return Impl::kMimalloc;
  Options::die("--impl=%s: expected tricolor, bdwgc, malloc or mimalloc", s.c_str());
}

// Pauses of bdwgc, measured with its collection-event callback: from the request to stop
// the world until the world runs again (bdwgc marks with the world stopped; it sweeps
// lazily during allocation, which this does not count).
struct BdwgcPauses {
  std::mutex mu;
  uint64_t begin = 0;
  std::vector<uint64_t> pauses;
  uint64_t total = 0;
  static BdwgcPauses& get() {
    static BdwgcPauses* p = new BdwgcPauses;
    return *p;
  }
};

#if PERF_HAVE_BDWGC
inline void bdwgc_event(GC_EventType e) {
  auto& p = BdwgcPauses::get();
  if (e == GC_EVENT_PRE_STOP_WORLD) {
    p.begin = now_ns();
  } else if (e == GC_EVENT_POST_START_WORLD && p.begin) {
    uint64_t d = now_ns() - p.begin;
    p.begin = 0;
    p.pauses.push_back(d);
    p.total += d;
  }
}
#endif

struct InitParams {
  int gc_percent = 100;  // tricolor: negative = no automatic collection
};

inline void init_impl(Impl impl, const InitParams& ip = {}) {
  switch (impl) {
    case Impl::kTricolor: {
      gc_options o;
      gc_options_default(&o);  // keeps TRICOLOR_GCTRACE / TRICOLOR_HEAPTRACE from the env
      if (ip.gc_percent != 100) o.gc_percent = ip.gc_percent;
      if (gc_init(&o) != 0) Options::die("gc_init failed");
      break;
    }
    case Impl::kBdwgc:
#if PERF_HAVE_BDWGC
      GC_INIT();
      GC_allow_register_threads();
      GC_set_on_collection_event(bdwgc_event);
      if (ip.gc_percent < 0) GC_disable();
#endif
      break;
    default:
      break;
  }
}

// ---- Memory managers (the template parameter M of every benchmark) ---------------

struct TricolorMem {
  static constexpr Impl kImpl = Impl::kTricolor;
  static constexpr bool kManual = false;
  static void* alloc(size_t n, const gc_type* t) { return gc_alloc(n, t); }
  static void* alloc_noscan(size_t n) { return gc_alloc_noscan(n); }
  static void store(void* slot, void* v) { gc_write_ptr(slot, v); }
  static void release(void*) {}
  static void poll() { gc_safepoint(); }
  struct ThreadScope {
    ThreadScope() { gc_thread_attach(); }
    ~ThreadScope() { gc_thread_detach(); }
  };
  struct BlockingScope {
    BlockingScope() { gc_blocking_begin(); }
    ~BlockingScope() { gc_blocking_end(); }
  };
};

#if PERF_HAVE_BDWGC
struct BdwgcMem {
  static constexpr Impl kImpl = Impl::kBdwgc;
  static constexpr bool kManual = false;
  static void* alloc(size_t n, const gc_type*) { return GC_MALLOC(n); }
  static void* alloc_noscan(size_t n) { return GC_MALLOC_ATOMIC(n); }  // not cleared
  static void store(void* slot, void* v) { *static_cast<void**>(slot) = v; }
  static void release(void*) {}
  static void poll() {}  // bdwgc stops threads with signals: no polls needed
  struct ThreadScope {
    bool registered = false;
    ThreadScope() {
      GC_stack_base sb;
      if (GC_get_stack_base(&sb) == GC_SUCCESS) registered = GC_register_my_thread(&sb) == GC_SUCCESS;
    }
    ~ThreadScope() {
      if (registered) GC_unregister_my_thread();
    }
  };
  struct BlockingScope {
    BlockingScope() {}
  };
};
#endif

struct MallocMem {
  static constexpr Impl kImpl = Impl::kMalloc;
  static constexpr bool kManual = true;
  static void* alloc(size_t n, const gc_type*) { return __libc_malloc(n); }  // not cleared
  static void* alloc_noscan(size_t n) { return __libc_malloc(n); }
  static void store(void* slot, void* v) { *static_cast<void**>(slot) = v; }
  static void release(void* p) { __libc_free(p); }
  static void poll() {}
  struct ThreadScope {
    ThreadScope() {}  // user-provided: no unused-variable warning at the use site
  };
  struct BlockingScope {
    BlockingScope() {}
  };
};

struct MimallocMem {
  static constexpr Impl kImpl = Impl::kMimalloc;
  static constexpr bool kManual = true;
  static void* alloc(size_t n, const gc_type*) { return mi_malloc(n); }  // not cleared
  static void* alloc_noscan(size_t n) { return mi_malloc(n); }
  static void store(void* slot, void* v) { *static_cast<void**>(slot) = v; }
  static void release(void* p) { mi_free(p); }
  static void poll() {}
  struct ThreadScope {
    ThreadScope() {}  // user-provided: no unused-variable warning at the use site
  };
  struct BlockingScope {
    BlockingScope() {}
  };
};

// Calls f.template operator()<M>() with the manager chosen by impl.
template <class F>
auto dispatch(Impl impl, F&& f) {
  switch (impl) {
    case Impl::kTricolor: return f.template operator()<TricolorMem>();
#if PERF_HAVE_BDWGC
    case Impl::kBdwgc: return f.template operator()<BdwgcMem>();
#endif
    case Impl::kMimalloc: return f.template operator()<MimallocMem>();
    default: return f.template operator()<MallocMem>();
  }
}

// ---- Collector figures ----------------------------------------------------------

struct GcFigures {
  uint64_t cycles = 0;
  double max_pause_us = 0;    // longest single stop-the-world pause
  double p99_pause_us = 0;    // 99th percentile of the per-cycle pause (sum of a cycle's pauses)
  double pause_total_ms = 0;
  double gc_cpu = 0;          // share of the available CPU used by the collector
  // tricolor: the collector's share of the CPU while it marks (Go's utilization, whose goal
  // is 25%): mark workers and assists over the mark phases' time on every proc; and the
  // assists' part of it. Idle marking (procs no thread wanted) is left out, as Go does.
  double mark_cpu = -1;
  double mark_assist = -1;
};

inline double percentile(std::vector<uint64_t> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = size_t(q * double(v.size() - 1) + 0.5);
  return double(v[std::min(i, v.size() - 1)]);
}

// `wall_ns`: the benchmark's elapsed time (bdwgc's GC CPU is its stopped time over it).
inline GcFigures read_gc_figures(Impl impl, uint64_t wall_ns) {
  GcFigures f;
  if (impl == Impl::kTricolor) {
    gc_stats s;
    gc_read_stats(&s);
    f.cycles = s.num_gc;
    f.max_pause_us = double(s.pause_max_ns) / 1e3;
    std::vector<uint64_t> ring;
    uint32_t n = std::min<uint32_t>(s.num_gc, GC_PAUSE_RING);
    for (uint32_t i = 0; i < n; i++) ring.push_back(s.pause_ns[(s.num_gc - 1 - i) % GC_PAUSE_RING]);
    f.p99_pause_us = percentile(ring, 0.99) / 1e3;
    f.pause_total_ms = double(s.pause_total_ns) / 1e6;
    f.gc_cpu = s.gc_cpu_fraction;
    double avail = double(s.mark_ns) * s.procs;
    if (avail > 0) {
      f.mark_cpu = double(s.mark_worker_ns + s.assist_ns) / avail;
      f.mark_assist = double(s.assist_ns) / avail;
    }
  } else if (impl == Impl::kBdwgc) {
#if PERF_HAVE_BDWGC
    auto& p = BdwgcPauses::get();
    std::lock_guard<std::mutex> g(p.mu);
    f.cycles = GC_get_gc_no();
    uint64_t mx = 0;
    for (uint64_t d : p.pauses) mx = std::max(mx, d);
    f.max_pause_us = double(mx) / 1e3;
    f.p99_pause_us = percentile(p.pauses, 0.99) / 1e3;
    f.pause_total_ms = double(p.total) / 1e6;
    // The world is stopped while bdwgc marks (with every core marking), so its share of
    // the CPU is its stopped time over the elapsed time; lazy sweeping is not counted.
    f.gc_cpu = wall_ns ? double(p.total) / double(wall_ns) : 0;
#endif
  }
  (void)wall_ns;
  return f;
}

// Prints one RESULT line. `extra` is appended verbatim ("key=value key=value").
inline void report(const char* name, Impl impl, uint64_t wall_ns, const std::string& extra = "") {
  GcFigures f = read_gc_figures(impl, wall_ns);
  char mark[96] = "";
  if (f.mark_cpu >= 0)
    snprintf(mark, sizeof mark, " mark_cpu=%.4f mark_assist=%.4f", f.mark_cpu, f.mark_assist);
  printf("RESULT name=%s impl=%s time_s=%.4f cpu_s=%.3f peak_rss_kb=%ld gc_cycles=%llu "
         "max_pause_us=%.1f p99_pause_us=%.1f pause_total_ms=%.2f gc_cpu=%.4f%s%s%s\n",
         name, impl_name(impl), double(wall_ns) / 1e9, double(process_cpu_ns()) / 1e9, peak_rss_kb(),
         (unsigned long long)f.cycles, f.max_pause_us, f.p99_pause_us, f.pause_total_ms,
         f.gc_cpu, extra.empty() ? "" : " ", extra.c_str(), mark);
  fflush(stdout);
}

inline std::string kv(const char* key, double v) {
  char buf[96];
  snprintf(buf, sizeof buf, "%s=%.4g", key, v);
  return buf;
}
inline std::string kv(const char* key, long long v) {
  char buf[96];
  snprintf(buf, sizeof buf, "%s=%lld", key, v);
  return buf;
}

// Keeps a value alive for the optimiser without costing an instruction.
template <class T>
inline void keep(T const& v) {
  asm volatile("" : : "g"(v) : "memory");
}

// The 16-byte node of the tree benchmarks (binary_trees, mark): two pointers.
struct TreeNode {
  TreeNode* left;
  TreeNode* right;
};
// Its precise type for tricolor (after init_impl; the heap keeps it).
inline const gc_type* new_tree_node_type() {
  size_t offs[] = {offsetof(TreeNode, left), offsetof(TreeNode, right)};
  return gc_type_new("TreeNode", sizeof(TreeNode), offs, 2);
}

}  // namespace perf

#endif  // TRICOLOR_PERF_HARNESS_H_
