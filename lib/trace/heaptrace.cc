// Heap-trace dumps and gctrace lines. See heaptrace.h; both formats are documented in
// docs/tracing.md (keep it in step with every event and field written here).
#include "os/cpu.h"
#include "trace/heaptrace.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "alloc/mheap.h"
#include "alloc/sizeclasses.h"
#include "gc/thread.h"
#include "os/clock.h"
#include "trace/log.h"
#include "trace/samples.h"
#include "tricolor/gc.h"

namespace tricolor::internal {

namespace {

// The background writer: events are queued under a mutex (off the allocation fast path)
// and written by one thread, so the collector never waits for the disk.
struct Writer {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;  // mu
  FILE* file = nullptr;           // the writer thread's, until it is joined
  bool stop = false;              // mu
  bool ended = false;             // mu: the `end` event is queued; later events are dropped
  uint64_t queued = 0;            // mu: lines queued so far
  uint64_t written = 0;           // mu: lines written and flushed (or dropped by a failure)
  std::condition_variable written_cv;
  std::thread thread;
  std::string path;
};
// Relaxed loads: g_w is set before any thread that emits starts (gc_init) and cleared
// after they are joined (gc_shutdown); the mutex orders everything behind it.
std::atomic<Writer*> g_w{nullptr};
std::atomic<bool> g_enabled{false};

void writer_loop(Writer* w) {
  set_thread_name("tricolor-trace");
  std::unique_lock<std::mutex> g(w->mu);
  bool failed = false;
  for (;;) {
    w->cv.wait(g, [w] { return w->stop || !w->queue.empty(); });
    std::deque<std::string> batch;
    batch.swap(w->queue);
    bool stop = w->stop;
    uint64_t n = batch.size();
    g.unlock();
    if (!failed) {
      for (auto& line : batch) {
        fputs(line.c_str(), w->file);
        fputc('\n', w->file);
      }
      if (fflush(w->file) != 0 || ferror(w->file)) {
        // Disk full, a closed pipe...: say so once and stop tracing; the program runs on.
        failed = true;
        g_enabled.store(false, std::memory_order_relaxed);
        log_error("heap trace: writing '%s' failed (%s); the heap trace stops here",
                  w->path.c_str(), strerror(errno));
      }
    }
    g.lock();
    w->written += n;
    w->written_cv.notify_all();
    if (stop && w->queue.empty()) return;
  }
}

std::string end_event(bool at_exit);

// Stops the writer thread after it has written everything queued so far.
void stop_writer(Writer* w) {
  {
    std::lock_guard<std::mutex> g(w->mu);
    w->stop = true;
  }
  w->cv.notify_one();
  if (w->thread.joinable()) w->thread.join();
}

// A program may exit without gc_shutdown: write the `end` event and what is queued, so
// the dump is complete. The writer is left allocated (threads still running may queue
// more events, which are dropped).
// Queues the `end` event as the last one: an event another thread (the background sweeper,
// at exit) built before tracing was switched off is dropped rather than written after it.
void emit_end(Writer* w, std::string line) {
  {
    std::lock_guard<std::mutex> g(w->mu);
    if (w->ended) return;
    w->queue.push_back(std::move(line));
    w->queued++;
    w->ended = true;
  }
  w->cv.notify_one();
}

void flush_at_exit() {
  Writer* w = g_w.load(std::memory_order_relaxed);
  if (!w || !g_enabled.load(std::memory_order_relaxed)) return;
  emit_end(w, end_event(true));
  g_enabled.store(false, std::memory_order_relaxed);
  stop_writer(w);
  fflush(w->file);
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  int n = vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return std::string(buf, n < 0 ? 0 : std::min<size_t>(size_t(n), sizeof buf - 1));
}

std::string json_string(const char* s) {
  std::string out = "\"";
  for (const char* p = s; *p; p++) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') { out += '\\'; out += static_cast<char>(c); }
    else if (c < 0x20) out += fmt("\\u%04x", c);
    else out += static_cast<char>(c);
  }
  return out + "\"";
}

std::string head(const char* ev) {
  return fmt("{\"v\":%d,\"ev\":\"%s\",\"t_ns\":%llu", kHeapTraceVersion, ev,
             static_cast<unsigned long long>(trace_now_ns()));
}

using ull = unsigned long long;

}  // namespace

uint64_t trace_now_ns() { return monotonic_ns() - collector_stats().start_ns; }
bool heaptrace_enabled() { return g_enabled.load(std::memory_order_relaxed); }

bool heaptrace_open(const char* path, int procs, int gogc, uint64_t memory_limit) {
  if (g_w.load(std::memory_order_relaxed)) heaptrace_close();  // a dump left open at exit
  FILE* f = fopen(path, "w");
  if (!f) {
    log_error("heap trace: cannot write '%s' (%s); running without a heap trace", path, strerror(errno));
    return false;
  }
  samples_clear();  // objects sampled for an earlier dump
  Writer* w = new Writer();
  w->file = f;
  w->path = path;
  w->thread = std::thread(writer_loop, w);
  g_w.store(w, std::memory_order_relaxed);
  g_enabled.store(true);
  static bool atexit_done = [] { return atexit(flush_at_exit) == 0; }();
  (void)atexit_done;
  std::string line = head("start");
  line += fmt(",\"unix_ns\":%llu,\"procs\":%d,\"gogc\":%d,\"memory_limit\":%llu,\"pid\":%d,"
              "\"page_size\":%zu,\"sample_bytes\":%llu,\"classes\":[",
              ull(unix_ns()), procs, gogc, ull(memory_limit), int(getpid()), kPageSize,
              ull(kSampleBytes));
  for (int c = 0; c < kNumSizeClasses; c++)
    line += fmt("%s[%d,%u,%u]", c ? "," : "", c, kClassToSize[c], unsigned(kClassToNPages[c]));
  line += "]}";
  heaptrace_emit(std::move(line));
  return true;
}

void heaptrace_emit(std::string line) {
  Writer* w = g_w.load(std::memory_order_relaxed);
  if (!w) return;
  {
    std::lock_guard<std::mutex> g(w->mu);
    if (w->ended) return;
    w->queue.push_back(std::move(line));
    w->queued++;
  }
  w->cv.notify_one();
}

namespace {
// Waits (at most a second) until the writer has written and flushed every line queued so
// far: for an event a process may die right after (oom: the default handler aborts).
void heaptrace_sync() {
  Writer* w = g_w.load(std::memory_order_relaxed);
  if (!w) return;
  // A collector wait: a stop of the world does not wait for this thread meanwhile.
  collector_wait_begin();
  {
    std::unique_lock<std::mutex> g(w->mu);
    uint64_t target = w->queued;
    w->written_cv.wait_for(g, std::chrono::seconds(1),
                           [&] { return w->written >= target || w->stop; });
  }
  collector_wait_end();
}
}  // namespace

namespace {
std::string end_event(bool at_exit) {
  gc_stats s;
  gc_read_stats(&s);
  std::string line = head("end");
  line += fmt(",\"num_gc\":%u,\"num_forced_gc\":%u,\"pause_total_ns\":%llu,"
              "\"pause_max_ns\":%llu,\"gc_cpu_fraction\":%.6f,\"total_alloc\":%llu,"
              "\"mallocs\":%llu,\"frees\":%llu,\"at_exit\":%s}",
              s.num_gc, s.num_forced_gc, ull(s.pause_total_ns), ull(s.pause_max_ns),
              s.gc_cpu_fraction, ull(s.total_alloc), ull(s.mallocs), ull(s.frees),
              at_exit ? "true" : "false");
  return line;
}
}  // namespace

void heaptrace_close() {
  Writer* w = g_w.load(std::memory_order_relaxed);
  if (!w) return;
  if (g_enabled.load(std::memory_order_relaxed)) emit_end(w, end_event(false));
  g_enabled.store(false);
  stop_writer(w);
  fclose(w->file);
  g_w.store(nullptr, std::memory_order_relaxed);
  delete w;
  samples_clear();
}

void trace_cycle_begin(uint32_t cycle, CycleReason reason, uint64_t heap_live, uint64_t trigger,
                       uint64_t goal) {
  if (!heaptrace_enabled()) return;
  std::string l = head("cycle_begin");
  l += fmt(",\"cycle\":%u,\"reason\":\"%s\",\"heap_live\":%llu,\"trigger\":%llu,\"goal\":%llu}",
           cycle, reason_name(reason), ull(heap_live),
           ull(trigger == Pacer::kNoGoal ? 0 : trigger), ull(goal == Pacer::kNoGoal ? 0 : goal));
  heaptrace_emit(std::move(l));
}

void trace_pause(uint32_t cycle, const char* phase, uint64_t ns) {
  if (!heaptrace_enabled()) return;
  std::string l = head("pause");
  l += fmt(",\"cycle\":%u,\"phase\":\"%s\",\"ns\":%llu}", cycle, phase, ull(ns));
  heaptrace_emit(std::move(l));
}

void trace_cycle_end(uint32_t cycle, const CycleTimes& ct, double frac) {
  if (!heaptrace_enabled()) return;
  gc_stats s;
  gc_read_stats(&s);
  gc_class_stats cls[kNumSizeClasses];
  gc_read_class_stats(cls, kNumSizeClasses);
  // The STW phases are the pauses themselves (mark termination summed over restarts), as
  // in the gctrace line; mark is the concurrent phase's wall time.
  uint64_t st = ct.pause_ns[0], mt = ct.pause_ns[1];
  uint64_t mark = ct.mark_term_ns > ct.mark_ns ? ct.mark_term_ns - ct.mark_ns : 0;
  std::string l = head("cycle_end");
  l += fmt(",\"cycle\":%u,\"reason\":\"%s\",\"heap_start\":%llu,\"heap_end\":%llu,"
           "\"heap_marked\":%llu,\"goal\":%llu,\"trigger\":%llu,",
           cycle, reason_name(ct.reason), ull(ct.heap_start), ull(ct.heap_end), ull(ct.heap_marked),
           ull(ct.goal == Pacer::kNoGoal ? 0 : ct.goal), ull(ct.trigger == Pacer::kNoGoal ? 0 : ct.trigger));
  int procs = configured_procs();
  l += fmt("\"wall_ns\":{\"sweep_term\":%llu,\"mark\":%llu,\"mark_term\":%llu},", ull(st), ull(mark), ull(mt));
  l += fmt("\"cpu_ns\":{\"sweep_term\":%llu,\"assist\":%llu,\"background\":%llu,\"idle\":%llu,"
           "\"mark_term\":%llu},",
           ull(ct.pause_ns[0] * procs), ull(ct.assist_cpu_ns), ull(ct.worker_cpu_ns), ull(ct.idle_cpu_ns),
           ull(ct.pause_ns[1] * procs));
  l += fmt("\"pause_ns\":%llu,\"restarts\":%d,\"gc_cpu_fraction\":%.6f,\"heap_sys\":%llu,"
           "\"heap_inuse\":%llu,\"heap_alloc\":%llu,\"heap_released\":%llu,\"heap_objects\":%llu,"
           "\"stacks_scanned\":%llu,\"classes\":[",
           ull(ct.pause_ns[0] + ct.pause_ns[1]), ct.restarts, frac, ull(s.heap_sys), ull(s.heap_inuse),
           ull(s.heap_alloc), ull(s.heap_released), ull(s.heap_objects), ull(ct.stacks_scanned));
  bool first = true;
  for (auto& c : cls) {
    if (!c.spans) continue;
    l += fmt("%s[%u,%llu,%llu,%llu]", first ? "" : ",", c.size_class, ull(c.spans), ull(c.objects),
             ull(c.bytes_free));
    first = false;
  }
  l += "]}";
  heaptrace_emit(std::move(l));
}

void trace_sweep_done(uint32_t cycle, uint64_t wall_ns, uint64_t cpu_ns, uint64_t spans,
                      uint64_t bytes, const char* by) {
  if (!heaptrace_enabled()) return;
  std::string l = head("sweep_done");
  l += fmt(",\"cycle\":%u,\"wall_ns\":%llu,\"cpu_ns\":%llu,\"spans_swept\":%llu,"
           "\"bytes_freed\":%llu,\"by\":\"%s\"}",
           cycle, ull(wall_ns), ull(cpu_ns), ull(spans), ull(bytes), by);
  heaptrace_emit(std::move(l));
}

void trace_scavenge(uint64_t released, const char* reason) {
  if (!heaptrace_enabled()) return;
  std::string l = head("scavenge");
  l += fmt(",\"released\":%llu,\"heap_released\":%llu,\"reason\":\"%s\"}", ull(released),
           ull(heap().counters.heap_released.load()), reason);
  heaptrace_emit(std::move(l));
}

namespace {
// The members alloc_sample and free_sample share: the object, its type, size and weight.
std::string sample_members(const SampleRecord& r) {
  return fmt(",\"id\":%llu,\"addr\":\"0x%llx\",\"type\":", ull(r.id), ull(r.addr)) +
         json_string(r.type) + fmt(",\"size\":%llu,\"weight\":%llu}", ull(r.size), ull(r.weight));
}
}  // namespace

void trace_alloc_sample(mspan* s, uintptr_t p, const char* type, uint64_t size, uint64_t weight) {
  if (!heaptrace_enabled()) return;
  // The record goes in before the event is queued, and its free_sample cannot come first:
  // the span is the caller's until its next safepoint, and only a sweep after the next mark
  // termination can free the object.
  SampleRecord r = samples_remember(s, p, type, size, weight);
  heaptrace_emit(head("alloc_sample") + sample_members(r));
}

void trace_sweep_samples(mspan* s) {
  std::vector<SampleRecord> dead;
  samples_take_dead(s, &dead);
  if (!heaptrace_enabled()) return;
  for (auto& r : dead) heaptrace_emit(head("free_sample") + sample_members(r));
}

void trace_oom(uint64_t request, uint64_t limit) {
  if (!heaptrace_enabled()) return;
  std::string l = head("oom");
  l += fmt(",\"request\":%llu,\"limit\":%llu}", ull(request), ull(limit));
  heaptrace_emit(std::move(l));
  // The handler runs next, and the default one aborts: the event is on disk first (it
  // was lost in 6 dumps of 20 with four threads running out of memory).
  heaptrace_sync();
}

std::string gctrace_format(uint32_t cycle, double at, const CycleTimes& ct, double frac, int procs) {
  // Go's gctrace shape, fields documented in docs/tracing.md:
  // gc N @T s P%: STW1+MARK+STW2 ms clock, STW1cpu+assist/background/idle+STW2cpu ms cpu,
  // start->end->live MB, goal MB goal, P P (forced)
  auto ms = [](uint64_t ns) { return double(ns) / 1e6; };
  auto mb = [](uint64_t b) { return static_cast<unsigned long long>(b >> 20); };
  uint64_t st = ct.pause_ns[0], mt = ct.pause_ns[1];
  uint64_t mark = ct.mark_term_ns > ct.mark_ns ? ct.mark_term_ns - ct.mark_ns : 0;
  char line[512];
  snprintf(line, sizeof line,
           "gc %u @%.3fs %d%%: %.3f+%.3f+%.3f ms clock, %.3f+%.3f/%.3f/%.3f+%.3f ms cpu, "
           "%llu->%llu->%llu MB, %llu MB goal, %d P%s",
           cycle, at, static_cast<int>(frac * 100), ms(st), ms(mark), ms(mt), ms(st * procs),
           ms(ct.assist_cpu_ns), ms(ct.worker_cpu_ns), ms(ct.idle_cpu_ns), ms(mt * procs),
           mb(ct.heap_start), mb(ct.heap_end), mb(ct.heap_marked),
           mb(ct.goal == Pacer::kNoGoal ? 0 : ct.goal), procs,
           ct.reason == CycleReason::kUser ? " (forced)"
           : ct.reason == CycleReason::kPeriodic ? " (forced: periodic)" : "");
  return line;
}

void gctrace_print(uint32_t cycle, const CycleTimes& ct, double frac, int procs) {
  uint64_t t0 = collector_stats().start_ns;
  double at = ct.start_ns > t0 ? double(ct.start_ns - t0) / 1e9 : 0.0;
  log_raw_line(gctrace_format(cycle, at, ct, frac, procs).c_str());
}

}  // namespace tricolor::internal
