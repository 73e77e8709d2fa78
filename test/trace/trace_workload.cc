// A program that writes a heap-trace dump of a small workload (see workload.h), for the
// test of tools/heaptrace/report.py: trace_workload DUMP [MiB].
#include <cstdio>
#include <cstdlib>

#include "tricolor/gc.h"
#include "workload.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DUMP [MiB]\n", argv[0]);
    return 2;
  }
  gc_options o;
  gc_options_default(&o);
  o.heap_trace = argv[1];
  if (gc_init(&o) != 0) return 1;
  size_t mib = argc > 2 ? strtoul(argv[2], nullptr, 10) : 256;
  tricolor::test::run_workload(mib);
  gc_shutdown();
  return 0;
}
