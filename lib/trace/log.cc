// The one file that talks to spdlog: a named logger "tricolor" on stderr, never the
// application's default logger.
#include "trace/log.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdio>
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
  vlog(spdlog::level::warn, fmt, ap);
  va_end(ap);
}

void log_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(spdlog::level::err, fmt, ap);
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
