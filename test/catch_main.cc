// The one Catch2 main of the test executables.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>

// The heap verifier's failure count (lib/gc/collector.h), in the executables linked with
// the static library (tricolor_internal_dep); weak, so that one linked with the shared
// library (hidden symbols) or with no heap at all has none and checks nothing.
namespace tricolor::internal {
[[gnu::weak]] uint64_t verify_failures();
}

// A verifier failure after mark termination is logged by the collector and counted; no
// test case may have caused one, whether or not it checks the count itself.
int main(int argc, char** argv) {
  int result = Catch::Session().run(argc, argv);
  if (tricolor::internal::verify_failures) {
    uint64_t n = tricolor::internal::verify_failures();
    if (n != 0) {
      fprintf(stderr, "the heap verifier reported %llu failure(s) during the tests\n",
              static_cast<unsigned long long>(n));
      if (result == 0) result = 1;
    }
  }
  return result;
}

// The collector's threads (controller, mark workers, background sweeper) run until the
// process exits, as the Go runtime's do; gc_shutdown joins them, but a test process that
// simply returns from main does not call it. TSan would call them leaked threads: that is
// not a race, and the suite turns only that report off.
#if defined(__SANITIZE_THREAD__)
extern "C" const char* __tsan_default_options() { return "report_thread_leaks=0"; }
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
extern "C" const char* __tsan_default_options() { return "report_thread_leaks=0"; }
#endif
#endif
