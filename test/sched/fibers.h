// Test support for the scheduler: running a body as the main fiber with a chosen number of
// P's, and sizes scaled down under the sanitizers. Catch2 is not used inside fibers (it is
// not thread-safe and an exception must not cross a fiber's first frame): fibers record
// what they saw, and the test checks it after gc_run returns.
#pragma once

#include <functional>

#include "sched/sched.h"
#include "support/heap.h"
#include "tricolor/fiber.h"

namespace tricolor::test {

// Runs body() as the main fiber of a gc_run with `procs` P's (0: gc_options.procs).
inline int run_fibers(int procs, std::function<void()> body) {
  ensure_heap();
  tricolor::internal::sched_set_procs(procs);
  int rc = gc_run([](void* a) { (*static_cast<std::function<void()>*>(a))(); }, &body);
  tricolor::internal::sched_set_procs(0);
  return rc;
}

}  // namespace tricolor::test
