// mspan: allocation bits, heap bits, initialisation. See mspan.h.
#include "alloc/mspan.h"

#include <algorithm>
#include <cstring>

#include "alloc/types.h"
#include "trace/log.h"

namespace tricolor::internal {

int64_t mspan::next_free_index() {
  // Go's nextFreeIndex: skip whole words of allocated slots, reloading the cache.
  while (freeindex < nelems) {
    if (alloc_cache != 0) {
      uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(alloc_cache));
      uint32_t result = freeindex + bit;
      if (result >= nelems) {
        freeindex = nelems;
        return -1;
      }
      alloc_cache = bit + 1 == 64 ? 0 : alloc_cache >> (bit + 1);
      freeindex = result + 1;
      if (freeindex % 64 == 0 && freeindex < nelems) refill_alloc_cache(freeindex);
      alloc_count++;
      return result;
    }
    freeindex = (freeindex + 64) & ~uint32_t{63};
    if (freeindex >= nelems) {
      freeindex = nelems;
      return -1;
    }
    refill_alloc_cache(freeindex);
  }
  return -1;
}

uint32_t mspan::take_run(uint32_t max, uint32_t* first) {
  int64_t idx = next_free_index();
  if (idx < 0) return 0;
  *first = static_cast<uint32_t>(idx);
  uint32_t n = 1;
  // next_free_index left alloc_cache holding the slots from freeindex to the end of its
  // word (bits past the word are 0, so a run stops there until the next word is loaded).
  while (n < max && freeindex < nelems) {
    uint64_t inv = ~alloc_cache;
    uint32_t ones = inv == 0 ? 64 : static_cast<uint32_t>(__builtin_ctzll(inv));
    uint32_t k = std::min({ones, max - n, nelems - freeindex});
    if (k == 0) break;
    alloc_cache = k == 64 ? 0 : alloc_cache >> k;
    freeindex += k;
    alloc_count += k;
    n += k;
    if (freeindex % 64 != 0) break;  // an allocated slot, or max or nelems reached
    if (freeindex < nelems) refill_alloc_cache(freeindex);
  }
  return n;
}

void mspan::give_back_run(uint32_t first) {
  uint32_t n = freeindex - first;
  alloc_count -= n;
  freeindex = first;
  refill_alloc_cache(first);
  // Release: as every publication of freeindex_for_scan. With no marker running, no one
  // holds the old value.
  freeindex_for_scan.store(first, std::memory_order_release);
  for_each_bit_word(first, n, [&](uint32_t w, uint64_t m) { __atomic_fetch_and(&mark_bits[w], ~m, __ATOMIC_RELAXED); });
}

void span_init(mspan* s, uintptr_t start, size_t npages, SpanClass sc, uint32_t sweepgen) {
  s->start = start;
  s->npages = npages;
  s->spanclass = sc;
  uint32_t cls = span_class_size(sc);
  if (cls == 0) {
    s->elemsize = static_cast<uint32_t>(npages * kPageSize);
    s->nelems = 1;
    s->divmul = 0;
  } else {
    s->elemsize = kClassToSize[cls];
    s->nelems = kClassToNElems[cls];
    s->divmul = kClassToDivMul[cls];
  }
  s->limit = start + size_t(s->nelems) * s->elemsize;
  s->freeindex = 0;
  s->alloc_count = 0;
  s->alloc_count_before_cache = 0;
  s->nsampled = 0;
  s->freeindex_for_scan.store(0, std::memory_order_relaxed);
  s->sweepgen.store(sweepgen, std::memory_order_relaxed);
  s->large_type = nullptr;
  s->list = SpanList::kNone;
  s->next = nullptr;

  size_t nw = s->nwords_bits();
  size_t heap_words = 0, type_words = 0;
  if (cls != 0 && !span_class_noscan(sc)) {
    if (s->elemsize <= kMaxHeapBitsElem) heap_words = npages * kPageSize / 8 / 64;
    else type_words = s->nelems;
  }
  // A pooled struct keeps its block (a span refill paid for a malloc and a free otherwise:
  // 4% of an allocation benchmark whose every batch takes new spans).
  size_t need = 2 * nw + heap_words + type_words;
  if (need > s->bits_words) {
    delete[] s->bits_storage;
    s->bits_storage = new uint64_t[need];
    s->bits_words = static_cast<uint32_t>(need);
  }
  memset(s->bits_storage, 0, need * sizeof(uint64_t));
  s->alloc_bits = s->bits_storage;
  s->mark_bits = s->bits_storage + nw;
  s->heap_bits = heap_words ? s->bits_storage + 2 * nw : nullptr;
  s->obj_types = type_words ? reinterpret_cast<const gc_type**>(s->bits_storage + 2 * nw) : nullptr;
  uint32_t w = s->elemsize / 8;
  s->obj_word_mask = !heap_words ? 0 : w == 64 ? ~uint64_t{0} : (uint64_t{1} << w) - 1;
  // INV-SPAN-4: 64-word objects' bit patterns could collide with the states; they start
  // (and stay) mixed.
  s->uniform_bits.store(heap_words && w < 64 ? kHeapBitsUnset : kHeapBitsMixed,
                        std::memory_order_relaxed);
  s->refill_alloc_cache(0);
}

void span_release_bits(mspan* s) {
  delete[] s->bits_storage;
  s->bits_storage = s->alloc_bits = s->mark_bits = s->heap_bits = nullptr;
  s->bits_words = 0;
  s->obj_types = nullptr;
}

}  // namespace tricolor::internal
