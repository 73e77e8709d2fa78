// The heap verifier, run with the world stopped after marking (collector.cc: after every
// mark termination in debug and stress builds, or when a test asks):
//  - INV-MARK-1 at mark termination: no marked object points to an unmarked one (every
//    object reachable from a marked one is marked);
//  - INV-SPAN-1/2/3: span accounting: alloc_count matches the alloc bits and freeindex;
//    no marked slot is free.
#include <cinttypes>

#include "alloc/mheap.h"
#include "alloc/types.h"
#include "gc/collector.h"
#include "gc/mark.h"
#include "trace/log.h"

namespace tricolor::internal {

namespace {

uint64_t check_pointer(uintptr_t from, uintptr_t v, uint64_t& reported,
                       std::vector<VerifyEdge>* edges) {
  ObjRef r;
  if (v < 4096 || !find_object(v, &r)) return 0;
  if (r.span->mark_bit(r.idx)) return 0;
  uintptr_t to = r.span->object_base(r.idx);
  if (reported++ < 10)
    log_error("verifier: marked object %#" PRIxPTR " points to unmarked object %#" PRIxPTR
              " (INV-MARK-1)", from, to);
  if (edges && edges->size() < 16) edges->push_back({from, to});
  return 1;
}

}  // namespace

__attribute__((no_sanitize("thread", "address")))
uint64_t verify_heap(bool after_mark, std::vector<VerifyEdge>* edges) {
  uint64_t bad = 0, reported = 0;
  heap().for_each_span([&](mspan* s) {
    // Span accounting (INV-SPAN-1, INV-SPAN-2).
    if (s->size_class() != 0) {
      uint32_t n = 0;
      for (uint32_t i = 0; i < s->nelems; i++) n += (i < s->freeindex || s->alloc_bit(i));
      if (n != s->alloc_count) {
        if (reported++ < 10)
          log_error("verifier: span %#" PRIxPTR " class %u: alloc_count %u, allocated slots %u "
                    "(INV-SPAN-1)", s->start, s->size_class(), s->alloc_count, n);
        bad++;
      }
    }
    for (uint32_t i = 0; i < s->nelems; i++) {
      if (!s->mark_bit(i)) continue;
      if (s->is_free(i)) {
        if (reported++ < 10)
          log_error("verifier: free slot %u of span %#" PRIxPTR " is marked (INV-SPAN-3)", i, s->start);
        bad++;
        continue;
      }
      if (!after_mark || s->noscan()) continue;
      uintptr_t base = s->object_base(i);
      const gc_type* t = nullptr;
      if (s->size_class() == 0) t = s->large_type;
      else if (!s->heap_bits) t = s->object_type(i);
      for (uint32_t w = 0; w < s->elemsize / 8; w++) {
        bool is_ptr;
        if (s->heap_bits) is_ptr = s->read_heap_bits(i) >> w & 1;
        else is_ptr = !t || t->word_is_ptr(w);
        if (!is_ptr) continue;
        uintptr_t v = *reinterpret_cast<uintptr_t*>(base + 8 * w);
        bad += check_pointer(base, v, reported, edges);
      }
    }
  });
  bad += heap().check_free_runs();
  return bad;
}

}  // namespace tricolor::internal
