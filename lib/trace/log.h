// Diagnostics: the library's own named logger (spdlog, used only in log.cc) and asserts.
//
// TRICOLOR_CHECK(cond, fmt...)   always on; cold; reports without allocating, then aborts.
// TRICOLOR_ASSERT(cond)          debug builds (NDEBUG unset) only.
// TRICOLOR_ASSERT_EXPENSIVE(c)   heap walks; only with -Dexpensive_checks=true.
// log_warn/log_error             go through spdlog's "tricolor" logger; never on a fast path.
#pragma once

#include <cstdarg>

#include "tricolor_config.h"

namespace tricolor::internal {

[[gnu::cold, gnu::noinline, noreturn]] void check_failed(const char* file, int line,
                                                         const char* cond, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

// printf-style messages to the "tricolor" logger (stderr). Never call on a fast path.
[[gnu::cold, gnu::noinline]] void log_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[gnu::cold, gnu::noinline]] void log_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Writes a raw line to stderr through the logger's sink lock (gctrace lines).
void log_raw_line(const char* line);

}  // namespace tricolor::internal

#define TRICOLOR_CHECK(cond, ...)                                                    \
  do {                                                                               \
    if (__builtin_expect(!(cond), 0))                                                \
      ::tricolor::internal::check_failed(__FILE__, __LINE__, #cond, "" __VA_ARGS__); \
  } while (0)

#ifdef NDEBUG
#define TRICOLOR_ASSERT(cond) ((void)0)
#else
#define TRICOLOR_ASSERT(cond) TRICOLOR_CHECK(cond, "%s", "")  // a format, not "": -Wformat-zero-length
#endif

#if TRICOLOR_EXPENSIVE_CHECKS
#define TRICOLOR_ASSERT_EXPENSIVE(cond) TRICOLOR_CHECK(cond)
#else
#define TRICOLOR_ASSERT_EXPENSIVE(cond) ((void)0)
#endif
