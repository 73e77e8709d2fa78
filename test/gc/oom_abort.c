/* Without an OOM handler, allocation past the memory limit aborts the process, saying why
 * on stderr (lib/gc/collector.cc, out_of_memory). The heap runs in a forked child, from a
 * process that never starts one; the parent checks that the child died of SIGABRT and that
 * its stderr names the cause. Public API only. */
#define _POSIX_C_SOURCE 200809L /* fileno, dup2 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tricolor/gc.h"

/* Holds every allocation: nothing can be freed, so the limit must be passed. */
static void* g_hold[1];

static void exhaust_without_handler(void) {
  gc_options o;
  gc_options_default(&o);
  o.memory_limit = 32u << 20;
  if (gc_init(&o) != 0) _exit(3);
  gc_add_root(g_hold, sizeof g_hold);
  void** arr = (void**)gc_alloc(1024 * sizeof(void*), NULL);
  g_hold[0] = arr;
  for (int i = 0; i < 1024; i++) gc_write_ptr(&arr[i], gc_alloc_noscan(1 << 20));
  _exit(4); /* 1 GiB under a 32 MiB limit: never reached */
}

int main(void) {
  FILE* err = tmpfile();
  if (!err) return 2;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* an expected abort: no core file */
    dup2(fileno(err), 2);
    exhaust_without_handler();
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return 2;
  char text[8192];
  rewind(err);
  size_t n = fread(text, 1, sizeof text - 1, err);
  text[n] = '\0';
  fputs(text, stderr);
  int ok = 1;
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
    fprintf(stderr, "oom_abort: FAILED: the child did not abort (status %#x)\n", status);
    ok = 0;
  }
  if (!strstr(text, "out of memory") || !strstr(text, "aborting")) {
    fprintf(stderr, "oom_abort: FAILED: no out-of-memory message on stderr\n");
    ok = 0;
  }
  return ok ? 0 : 1;
}
