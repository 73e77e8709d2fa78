// Fiber stack overflow: a message naming the cause, then the same death by SIGSEGV as
// before. See README.md ("Stack overflow") for the overview.
//
// A fiber that runs off the bottom of its stack touches the guard page below it (os/stack.h)
// and the kernel sends SIGSEGV to the thread. Without a handler that is a bare "Segmentation
// fault", which names neither the fiber nor the option that sizes its stack. The handler
// below cannot run on the stack that overflowed, so every M gives its thread an alternate
// signal stack while it runs fibers, and the handler is installed with SA_ONSTACK.
//
// Telling an overflow from any other fault uses the fault address only: the M running on
// the faulting thread knows its current fiber (M::curg) and so the stack it runs on, and an
// address inside that stack's guard page is an overflow. A fiber overflows only while it
// runs, so the current fiber is the only candidate. Every other fault goes to the handler
// that was installed before ours, as if ours were not there.
//
// Everything the handler does is async-signal-safe: it reads the M through initial-exec TLS
// (sched_fiber_stack_of_thread), formats the size by hand into a buffer on the signal stack,
// and calls write(2) and sigaction(2). It returns with the default action restored, so the
// faulting instruction runs again, faults again, and the process dies by SIGSEGV as it did
// without the handler (a core dump, if enabled, shows the overflowing frame).
//
// Not under ASan or TSan: they install their own SIGSEGV handlers, which report a stack
// overflow with the stack trace, and they must see the fault first.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "os/stack.h"
#include "sched/context.h"
#include "sched/sched.h"
#include "trace/log.h"

namespace tricolor::internal {

namespace {

#if TRICOLOR_ASAN || TRICOLOR_TSAN
constexpr bool kReport = false;
#else
constexpr bool kReport = true;
#endif

// 64 KiB: far above what the handler or a chained handler that prints a message needs,
// and above MINSIGSTKSZ even with AVX-512 state in the signal frame.
constexpr size_t kAltStackSize = 64 << 10;

// Written once by install_handlers before the handler is installed (the sigaction call
// orders them before any delivery), read only by the handler.
struct sigaction g_prev_segv;
struct sigaction g_prev_bus;
size_t g_guard = 0;  // the guard below each fiber stack (stack_mem_guard)

// Appends the decimal digits of v to *p.
void put_uint(char** p, size_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *(*p)++ = digits[--n];
}

void put_str(char** p, const char* s) {
  while (*s) *(*p)++ = *s++;
}

void report_overflow(size_t stack_size) {
  char buf[160];
  char* p = buf;
  put_str(&p, "tricolor: fiber stack overflow (the fiber's stack is ");
  put_uint(&p, stack_size);
  put_str(&p, " bytes; raise gc_options.fiber_stack_size)\n");
  const char* s = buf;
  while (s < p) {
    ssize_t n = write(STDERR_FILENO, s, static_cast<size_t>(p - s));
    if (n > 0) s += n;
    else if (n < 0 && errno == EINTR) continue;
    else break;
  }
}

// The default action: the faulting instruction, run again on return, ends the process.
void restore_default(int sig) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
}

// Hands the fault to the handler installed before ours, with the same arguments. A default
// or ignored action both end in the default one: an ignored SIGSEGV from a faulting
// instruction would only repeat forever (and the kernel kills the process anyway).
void chain(int sig, siginfo_t* info, void* uctx) {
  const struct sigaction& prev = sig == SIGBUS ? g_prev_bus : g_prev_segv;
  if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
    restore_default(sig);
    return;
  }
  if (prev.sa_flags & SA_RESETHAND) restore_default(sig);
  if (prev.sa_flags & SA_SIGINFO) prev.sa_sigaction(sig, info, uctx);
  else prev.sa_handler(sig);
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
  int saved_errno = errno;
  StackMem mem;
  uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (sched_fiber_stack_of_thread(&mem) && addr >= mem.lo - g_guard && addr < mem.lo) {
    report_overflow(mem.size());
    restore_default(sig);
  } else {
    errno = saved_errno;
    chain(sig, info, uctx);
  }
  errno = saved_errno;
}

void install_one(int sig, struct sigaction* prev) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  // A chained handler runs with the signals it asked to block blocked.
  sa.sa_mask = prev->sa_mask;
  sigaction(sig, &sa, nullptr);
}

}  // namespace

void overflow_handler_install() {
  if (!kReport) return;
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  g_guard = stack_mem_guard();
  if (sigaction(SIGSEGV, nullptr, &g_prev_segv) != 0 ||
      sigaction(SIGBUS, nullptr, &g_prev_bus) != 0) {
    log_warn("cannot read the SIGSEGV action (%s): fiber stack overflows are not reported",
             strerror(errno));
    return;
  }
  install_one(SIGSEGV, &g_prev_segv);
  install_one(SIGBUS, &g_prev_bus);
}

void altstack_begin(AltStack* a) {
  if (!kReport) return;
  size_t guard = stack_mem_guard();
  void* p = mmap(nullptr, kAltStackSize + guard, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    log_warn("cannot map a signal stack for a fiber worker (%s): a fiber stack overflow on "
             "it is a bare SIGSEGV", strerror(errno));
    return;
  }
  // A guard below the signal stack too: a handler that overflows it faults at once.
  mprotect(p, guard, PROT_NONE);
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_sp = static_cast<char*>(p) + guard;
  ss.ss_size = kAltStackSize;
  if (sigaltstack(&ss, &a->old) != 0) {
    log_warn("cannot install a signal stack for a fiber worker (%s): a fiber stack overflow "
             "on it is a bare SIGSEGV", strerror(errno));
    munmap(p, kAltStackSize + guard);
    return;
  }
  a->map = p;
  a->map_size = kAltStackSize + guard;
}

void altstack_end(AltStack* a) {
  if (!a->map) return;
  // The thread's previous signal stack, or none (SS_DISABLE) if it had none.
  stack_t old = a->old;
  old.ss_flags &= ~SS_ONSTACK;
  sigaltstack(&old, nullptr);
  munmap(a->map, a->map_size);
  a->map = nullptr;
  a->map_size = 0;
}

bool overflow_reporting() { return kReport; }

}  // namespace tricolor::internal
