// The one Catch2 main of the test executables.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

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
