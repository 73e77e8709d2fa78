// The one file that talks to spdlog: a named logger "tricolor" on stderr, never the
// application's default logger.
#include "trace/log.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <cstdlib>
#include <mutex>

namespace tricolor::internal {
namespace {

spdlog::logger& logger() {
  // Built once; a function-local static so that logging before gc_init works.
  static std::shared_ptr<spdlog::logger> l = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto lg = std::make_shared<spdlog::logger>("tricolor", sink);
    lg->set_pattern("tricolor: %l: %v");
    lg->set_level(spdlog::level::info);
    return lg;
  }();
  return *l;
}

void vlog(spdlog::level::level_enum lvl, const char* fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  // The message is already formatted: the string_view overload passes it through as is.
  // logger().log(lvl, "{}", buf) gave the same line but instantiated fmt's formatting
  // here, the slowest file of the library to compile (spdlog.h, not needed, added more).
  logger().log(lvl, spdlog::string_view_t(buf));
}

// At most kBurst messages of one format (one call site) a second: a misuse repeated in a
// loop (gc_collect after gc_shutdown, 56,000 lines in 2 ms) does not flood stderr. The
// first message after a quiet spell says how many were left out. glog's LOG_EVERY_N and
// the kernel's printk_ratelimit do the same.
constexpr int kBurst = 100;
constexpr uint64_t kWindowNs = 1000000000;
struct Rate {
  const char* fmt = nullptr;
  uint64_t window_start = 0;
  int printed = 0;
  uint64_t suppressed = 0;
};

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// Whether a message of `fmt` may be printed now; *suppressed: how many of it were left out
// since the last one printed (reported with this one).
bool rate_allows(const char* fmt, uint64_t* suppressed) {
  static std::mutex mu;
  static Rate table[64];
  std::lock_guard<std::mutex> g(mu);
  Rate& r = table[(reinterpret_cast<uintptr_t>(fmt) >> 3) % 64];
  uint64_t now = now_ns();
  if (r.fmt != fmt) r = Rate{fmt, now, 0, 0};  // a collision starts the entry over
  if (now - r.window_start >= kWindowNs) {
    r.window_start = now;
    r.printed = 0;
  }
  if (r.printed >= kBurst) {
    r.suppressed++;
    return false;
  }
  r.printed++;
  *suppressed = r.suppressed;
  r.suppressed = 0;
  return true;
}

void vlog_limited(spdlog::level::level_enum lvl, const char* fmt, va_list ap) {
  uint64_t suppressed = 0;
  if (!rate_allows(fmt, &suppressed)) return;
  if (suppressed)
    logger().log(lvl, spdlog::string_view_t(
                          std::string("(") + std::to_string(suppressed) +
                          " more messages like the next one were left out: over " +
                          std::to_string(kBurst) + " a second)"));
  vlog(lvl, fmt, ap);
}

}  // namespace

void check_failed(const char* file, int line, const char* cond, const char* fmt, ...) {
  // No allocation: the heap may be what is broken.
  char msg[512] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "tricolor: fatal: %s:%d: check failed: %s%s%s\n", file, line, cond,
          msg[0] ? ": " : "", msg);
  fflush(stderr);
  abort();
}

void log_warn(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog_limited(spdlog::level::warn, fmt, ap);
  va_end(ap);
}

void log_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog_limited(spdlog::level::err, fmt, ap);
  va_end(ap);
}

void log_info(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(spdlog::level::info, fmt, ap);
  va_end(ap);
}

void log_raw_line(const char* line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> g(mu);
  fputs(line, stderr);
  fputc('\n', stderr);
  fflush(stderr);
}

}  // namespace tricolor::internal
