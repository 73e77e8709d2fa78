// libFuzzer target: the library's input parsers. There is no C++ reader of heap-trace
// dumps in the library (tools/heaptrace reads them in Python), so the text the library
// parses itself is fuzzed instead: the TRICOLOR_* environment values read by
// gc_options_default, and the pointer maps given to gc_type_new (then used to allocate,
// store and collect).
//
// Input: byte 0 selects the variable set; the rest is split at '\n' into values for
// TRICOLOR_GOGC, TRICOLOR_MEMLIMIT, TRICOLOR_PROCS, TRICOLOR_GCTRACE, TRICOLOR_HEAPTRACE;
// a final chunk, if any, is a type description: size (2 bytes) then offsets (1 byte each,
// times 8, unaligned when odd).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tricolor/gc.h"

namespace {

const char* kVars[] = {"TRICOLOR_GOGC", "TRICOLOR_MEMLIMIT", "TRICOLOR_PROCS", "TRICOLOR_GCTRACE",
                       "TRICOLOR_HEAPTRACE"};

void init_once() {
  static bool done = [] {
    for (const char* v : kVars) unsetenv(v);
    gc_options o;
    gc_options_default(&o);
    if (gc_init(&o) != 0) abort();
    return true;
  }();
  (void)done;
}

void check(bool ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "fuzz_config: %s\n", what);
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  init_once();
  if (size == 0) return 0;
  std::vector<std::string> parts(1);
  for (size_t i = 1; i < size && parts.size() <= 6; i++) {
    if (data[i] == '\n') parts.emplace_back();
    else if (data[i] != 0) parts.back() += char(data[i]);
  }
  uint8_t mask = data[0];
  for (int k = 0; k < 5; k++) {
    if ((mask >> k & 1) && size_t(k) < parts.size()) setenv(kVars[k], parts[k].c_str(), 1);
    else unsetenv(kVars[k]);
  }
  gc_options o;
  gc_options_default(&o);
  for (const char* v : kVars) unsetenv(v);
  check(o.gc_percent >= -1 && o.gc_percent <= 1000000, "gc_percent out of range");
  check(o.procs >= 0 && o.procs <= 1024, "procs out of range");
  check(o.gctrace == 0 || o.gctrace == 1, "gctrace not 0 or 1");
  check(o.force_gc_period_ns > 0 && o.scavenge_delay_ns > 0, "periods not set");
  if (o.heap_trace) check(*o.heap_trace != 0, "empty heap trace path accepted");

  // A type description, then an object of that type with pointers stored where the map
  // says, and a collection.
  if (parts.size() >= 6 && parts[5].size() >= 2) {
    const std::string& t = parts[5];
    size_t tsize = size_t(uint8_t(t[0])) | size_t(uint8_t(t[1])) << 8;
    std::vector<size_t> offs;
    for (size_t i = 2; i < t.size() && offs.size() < 64; i++) {
      uint8_t b = uint8_t(t[i]);
      offs.push_back((b & 1) ? b : size_t(b) * 8);
    }
    const gc_type* ty = gc_type_new("fuzz", tsize, offs.data(), offs.size());
    bool valid = tsize > 0 && (offs.empty() || tsize % 8 == 0);
    for (size_t off : offs) valid = valid && off % 8 == 0 && off + 8 <= tsize;
    check((ty != nullptr) == valid, "gc_type_new accepted a bad map or refused a good one");
    if (ty) {
      void* keep[2] = {nullptr, nullptr};
      gc_add_root(keep, sizeof keep);
      keep[0] = gc_alloc(tsize, ty);
      check(keep[0] != nullptr, "allocation with a valid type failed");
      void* target = gc_alloc_noscan(24);
      memset(target, 0x42, 24);
      for (size_t off : offs) gc_write_ptr(static_cast<char*>(keep[0]) + off, target);
      target = nullptr;
      gc_collect();
      for (size_t off : offs) {
        void* p = *reinterpret_cast<void**>(static_cast<char*>(keep[0]) + off);
        check(gc_base(p) == p && static_cast<uint8_t*>(p)[23] == 0x42,
              "an object referenced through the type's pointer map was freed");
      }
      gc_remove_root(keep);
    }
  }
  return 0;
}
