// The one Catch2 main of the test executables.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_EXTERNAL_INTERFACES  // TestEventListenerBase
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>

#include "support/scrub.h"

// Each test case starts on a cleared stack. A test's frame lies where the earlier test
// cases' frames were, and a slot it never writes keeps what they left there: seen under
// ASan, an earlier test's pointer kept a node that the next test dropped and expected
// freed, its address reused. The listener is called from the frame that later calls the
// test case, so the 64 KiB below it cover the test's frames.
struct ScrubStackListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(Catch::TestCaseInfo const&) override {
    tricolor::test::scrub_stack_below<64 << 10>();
  }
};
CATCH_REGISTER_LISTENER(ScrubStackListener)

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
// This file is built without the sanitizers (test/meson.build), so the build says whether
// the executable runs under TSan.
#if defined(TRICOLOR_TEST_TSAN)
extern "C" const char* __tsan_default_options() { return "report_thread_leaks=0"; }
#endif
