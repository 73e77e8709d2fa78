// mspan: a run of pages holding objects of one span class. See lib/alloc/README.md for the
// overview of the allocator (mcache -> mcentral -> mheap).
//
// Bit layout of a small span (nelems objects of elemsize bytes from `start`):
//
//   alloc_bits [ceil(nelems/64) words]  1 = allocated as of the last sweep        (owner)
//   mark_bits  [ceil(nelems/64) words]  1 = marked this cycle                     (atomic OR)
//   heap_bits  [npages*1024/64 words]   1 bit per heap word: 1 = pointer slot     (owner
//              (scan spans, elemsize <= 512 only)                                   writes,
//   obj_types  [nelems]                 gc_type per object (scan, elemsize > 512)   relaxed)
//
// A heap-bit span whose objects all have the same pointer bits (every node of a tree type,
// every all-pointer object of a class) does not write the bitmap at all: uniform_bits holds
// those bits for every slot, and the bitmap is filled from it the first time an object with
// other bits is allocated in the span (INV-SPAN-4). That takes the bitmap's read-modify-write
// off the allocation fast path and a bitmap load off the marker's, for the common case.
//
// INV-SPAN-1 (mimalloc-style accounting): alloc_count == popcount(alloc_bits[0, freeindex))
//   + (number of slots >= freeindex with their alloc bit set), for a span not in an mcache.
// INV-SPAN-2: every slot below freeindex is allocated; alloc_cache holds the complement of
//   the 64 alloc bits from freeindex's word, shifted so bit 0 is slot freeindex.
// INV-SPAN-3: a slot is "free" for the collector iff idx >= freeindex_for_scan and its alloc
//   bit is clear (Go's isFree with freeIndexForScan): a conservative pointer to a free slot
//   is ignored, so a slot being handed out is never scanned half-initialised.
// INV-SPAN-4: uniform_bits < kHeapBitsUnset means every allocated slot's pointer bits are
//   uniform_bits and the bitmap may be stale; kHeapBitsMixed means the bitmap holds them.
//   It only goes unset -> uniform -> mixed during a span's life, written by the span's
//   owner; the bitmap is complete before mixed is stored (release), and a slot's own bits
//   are in place before the slot is published (freeindex_for_scan, release).
//
// sweepgen, relative to the heap's sweepgen h (incremented by 2 per cycle, only with the
// world stopped) — Go's table (reference/go-runtime-facts.md section 3.1):
//
//   span.sweepgen | meaning
//   --------------+--------------------------------------------------------------
//   h - 2         | needs sweeping
//   h - 1         | being swept
//   h             | swept, ready to use
//   h + 1         | cached in an mcache before this sweep began: needs sweeping
//   h + 3         | swept, then cached, still cached
//
// tricolor flushes every mcache at mark termination (world stopped), so h + 1 never
// survives a cycle change in practice; the state is kept so the table holds as in Go.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/sizeclasses.h"

struct gc_type;

namespace tricolor::internal {

inline constexpr int kNumSpanClasses = kNumSizeClasses * 2;  // scan and noscan
inline constexpr size_t kMaxHeapBitsElem = 512;  // larger scan objects keep a type pointer
// mspan::uniform_bits states other than a bit pattern (INV-SPAN-4). A pattern has at most
// elemsize/8 <= 64 bits; spans of 64-word objects start mixed, so for every span whose
// uniform_bits is a pattern, the two values below are not patterns (bit 63 is set).
inline constexpr uint64_t kHeapBitsUnset = ~uint64_t{0} - 1;  // no object allocated yet
inline constexpr uint64_t kHeapBitsMixed = ~uint64_t{0};      // the bitmap holds the bits

using SpanClass = uint8_t;
inline constexpr SpanClass make_span_class(uint32_t size_class, bool noscan) {
  return static_cast<SpanClass>(size_class << 1 | (noscan ? 1 : 0));
}
inline constexpr uint32_t span_class_size(SpanClass sc) { return sc >> 1; }
inline constexpr bool span_class_noscan(SpanClass sc) { return sc & 1; }

enum class SpanState : uint8_t { kDead = 0, kInUse = 1 };
enum class SpanList : uint8_t { kNone, kPartial, kFull, kMCache };

// The fields are grouped by who writes them: the markers read the first group for every
// pointer into the span while the allocating thread writes the allocation state for every
// object, so that state has a cache line of its own (sharing one made each allocation and
// each marker visit a cache miss on the other core).
struct alignas(64) mspan {
  // Set up with the span, read by everyone (markers, gc_base, sweepers).
  uintptr_t start = 0;
  size_t npages = 0;
  uintptr_t limit = 0;  // end of the last object
  uint32_t elemsize = 0;
  uint32_t nelems = 0;
  uint32_t divmul = 0;
  SpanClass spanclass = 0;
  std::atomic<SpanState> state{SpanState::kDead};  // release-stored when set up
  bool needzero = false;  // free slots may hold old data (false: a sweep cleared the dead)
  // Some of its pages may never have been written since the OS gave them (new arena pages,
  // or pages released to the OS): they read as zero, but not yet resident. An allocation
  // run on them writes each page once first (take_run); on resident pages that write was a
  // cache miss per page for nothing. Cleared by a sweep once every slot has been handed out.
  bool fresh = false;
  SpanList list = SpanList::kNone;                 // which list holds it (debug, verifier)
  uint64_t* alloc_bits = nullptr;
  uint64_t* mark_bits = nullptr;
  uint64_t* heap_bits = nullptr;
  const gc_type** obj_types = nullptr;
  const gc_type* large_type = nullptr;  // class 0: the one object's type
  uint64_t* bits_storage = nullptr;     // one block backing the bitmaps above
  uint32_t bits_words = 0;              // its capacity: kept while the struct is pooled
  uint64_t obj_word_mask = 0;           // heap-bit spans: one bit per word of an object
  // Heap-bit spans: the pointer bits of every object, or a state (INV-SPAN-4). Written by
  // the owner only, at most twice in the span's life: read-mostly, beside the fields above.
  std::atomic<uint64_t> uniform_bits{kHeapBitsMixed};

  mspan* next = nullptr;  // mcentral list links, guarded by that mcentral's lock

  // Allocation state: owned by the mcache holding the span, or by its sweeper.
  alignas(64) uint32_t freeindex = 0;
  uint32_t alloc_count = 0;
  uint32_t alloc_count_before_cache = 0;
  // Heap-trace samples among the span's objects (lib/trace/samples.cc): the sweep looks
  // them up only when this is not 0, so a span without one costs one load.
  uint32_t nsampled = 0;
  uint64_t alloc_cache = 0;
  // Published after the slots below it are zeroed, a run at a time (INV-SPAN-3). Read by the
  // markers (is_free) and written by each allocation: a line of its own, so that a marker's
  // read does not cost the allocator a miss on the line of freeindex and alloc_cache.
  alignas(64) std::atomic<uint32_t> freeindex_for_scan{0};
  std::atomic<uint32_t> sweepgen{0};

  uint32_t size_class() const { return span_class_size(spanclass); }
  bool noscan() const { return span_class_noscan(spanclass); }
  uintptr_t base() const { return start; }
  uint32_t nwords_bits() const { return (nelems + 63) / 64; }

  // Object index of an address inside [start, limit): one multiply (INV: divmul exact).
  // A large object's span (class 0) has divmul 0, so every address in it gives index 0.
  uint32_t object_index(uintptr_t p) const {
    return tricolor::internal::object_index(p - start, divmul);
  }
  uintptr_t object_base(uint32_t idx) const { return start + uintptr_t(idx) * elemsize; }

  // Relaxed: the sweeper rewrites the words in place while gc_base may read them.
  bool alloc_bit(uint32_t i) const {
    return __atomic_load_n(&alloc_bits[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1;
  }
  bool mark_bit(uint32_t i) const {
    // Relaxed: a racy read is fine, the bit only ever goes 0 -> 1 during a cycle.
    return __atomic_load_n(&mark_bits[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1;
  }
  // Sets the mark bit; true if this call set it (the caller greys the object).
  bool try_mark(uint32_t i) {
    uint64_t bit = uint64_t{1} << (i % 64);
    uint64_t* w = &mark_bits[i / 64];
    if (__atomic_load_n(w, __ATOMIC_RELAXED) & bit) return false;
    // Relaxed: the mark bit guards no data; the work queue hand-off orders the scan.
    return !(__atomic_fetch_or(w, bit, __ATOMIC_RELAXED) & bit);
  }
  // INV-SPAN-3.
  bool is_free(uint32_t i) const {
    if (i < freeindex_for_scan.load(std::memory_order_acquire)) return false;
    return !alloc_bit(i);
  }

  // Loads alloc_cache from the alloc bits for the 64 slots starting at `whichbyte`*8.
  void refill_alloc_cache(uint32_t index) {
    uint64_t w = alloc_bits[index / 64];
    alloc_cache = ~w >> (index % 64);
  }

  // Takes the next free slot from freeindex on (Go's nextFreeIndex); -1 if the span is full.
  int64_t next_free_index();
  // Takes the next free slot and the free slots that follow it without a gap, at most
  // `max` in all: the mcache's allocation run (mcache.h). *first is the first slot; returns
  // how many were taken, 0 if the span is full. The slots are allocated as far as the span
  // is concerned (below freeindex, counted in alloc_count: INV-SPAN-1/2 hold).
  uint32_t take_run(uint32_t max, uint32_t* first);
  // Gives back the run [first, freeindex) taken last and not handed out: freeindex,
  // alloc_count, alloc_cache and freeindex_for_scan as before take_run, mark bits of the
  // slots cleared. The owner, with the world stopped or no mark running.
  void give_back_run(uint32_t first);
  // Mark bits of slots [first, first + n): allocate-black for a whole run (atomic OR:
  // markers set bits of other slots of the same words).
  void mark_range(uint32_t first, uint32_t n) {
    // Relaxed: as try_mark.
    for_each_bit_word(first, n, [&](uint32_t w, uint64_t m) { __atomic_fetch_or(&mark_bits[w], m, __ATOMIC_RELAXED); });
  }
  // Calls fn(word, mask) for each bitmap word holding bits of slots [first, first + n).
  template <class F>
  static void for_each_bit_word(uint32_t first, uint32_t n, F fn) {
    for (uint32_t i = first, end = first + n; i < end;) {
      uint32_t k = std::min(end - i, 64 - i % 64);
      fn(i / 64, (k == 64 ? ~uint64_t{0} : (uint64_t{1} << k) - 1) << (i % 64));
      i += k;
    }
  }

  // Heap bits (pointer map) of a small scan span with elemsize <= 512.
  // An object of w <= 64 words starts at bit idx*w and covers at most two bitmap words.
  // tile64: the type's pointer bits for words 0..63 (gc_type::tile64).
  // Relaxed atomics: markers read neighbouring objects' bits in the same word.
  //
  // Records slot idx's pointer bits, by the span's owner, before the slot is published.
  // The allocation fast path does this itself when the bits equal uniform_bits.
  void set_heap_bits(uint32_t idx, uint64_t tile64) {
    uint64_t bits = tile64 & obj_word_mask;
    uint64_t u = uniform_bits.load(std::memory_order_relaxed);  // only the owner writes it
    if (u == kHeapBitsMixed) {  // first: a 64-word pattern may equal a state's value
      write_heap_bits(idx, bits);
      return;
    }
    if (bits == u) return;
    if (u == kHeapBitsUnset) {
      // Relaxed: the slot's publication (release) orders it before any marker's read.
      uniform_bits.store(bits, std::memory_order_relaxed);
      return;
    }
    // The first object with other bits: every slot gets the uniform bits in the bitmap,
    // then markers are told to read the bitmap (release: the fill is visible first).
    write_heap_bits_run(0, nelems, u);
    uniform_bits.store(kHeapBitsMixed, std::memory_order_release);
    write_heap_bits(idx, bits);
  }
  void write_heap_bits(uint32_t idx, uint64_t bits) { write_heap_bits_at(object_base(idx), bits); }
  // write_heap_bits for the slot at address p: its first bit is its first word's, so no
  // index is needed.
  void write_heap_bits_at(uintptr_t p, uint64_t bits) {
    size_t bit = (p - start) / 8;
    uint64_t mask = obj_word_mask;
    uint64_t* q = &heap_bits[bit / 64];
    unsigned sh = bit % 64;
    uint64_t old = __atomic_load_n(q, __ATOMIC_RELAXED);
    __atomic_store_n(q, (old & ~(mask << sh)) | (bits << sh), __ATOMIC_RELAXED);
    unsigned w = elemsize / 8;
    if (sh + w > 64) {
      uint64_t m2 = (uint64_t{1} << (sh + w - 64)) - 1;
      uint64_t old2 = __atomic_load_n(q + 1, __ATOMIC_RELAXED);
      __atomic_store_n(q + 1, (old2 & ~m2) | (bits >> (64 - sh)), __ATOMIC_RELAXED);
    }
  }
  // write_heap_bits(i, bits) for the `count` slots from idx, a bitmap word at a time.
  void write_heap_bits_run(uint32_t idx, uint32_t count, uint64_t bits) {
    uint32_t w = elemsize / 8;
    if (w >= 64) {  // an object per bitmap word
      for (uint32_t i = 0; i < count; i++) __atomic_store_n(&heap_bits[size_t(idx + i)], bits, __ATOMIC_RELAXED);
      return;
    }
    // The pattern tiled from an object's first bit over 128 bits: the 64 bits from any
    // object-relative offset below w are in it.
    unsigned __int128 tile = bits;
    for (uint32_t b = w; b < 128; b *= 2) tile |= tile << b;  // b bits tiled: 2b of them
    size_t first = size_t(idx) * w, end = first + size_t(count) * w;
    for (size_t bit = first; bit < end;) {
      size_t word = bit / 64;
      unsigned lo = unsigned(bit % 64);
      unsigned hi = end - word * 64 < 64 ? unsigned(end - word * 64) : 64;  // bits [lo, hi)
      uint64_t mask = (hi == 64 ? ~uint64_t{0} : (uint64_t{1} << hi) - 1) & ~((uint64_t{1} << lo) - 1);
      // The pattern at this word's bit 0 is the tile's from (word*64 - first) mod w on;
      // bits below `lo` are masked off (lo > 0 only for the first word, where bit = first).
      uint64_t v = lo > 0 ? static_cast<uint64_t>(tile) << lo
                          : static_cast<uint64_t>(tile >> ((word * 64 - first) % w));
      uint64_t* p = &heap_bits[word];
      uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
      __atomic_store_n(p, (old & ~mask) | (v & mask), __ATOMIC_RELAXED);
      bit = (word + 1) * 64;
    }
  }
  // Every allocated slot's pointer bits, or kHeapBitsUnset / kHeapBitsMixed (INV-SPAN-4):
  // read_heap_bits without the object's index, for the common uniform span.
  uint64_t uniform_heap_bits() const {
    // Acquire: as read_heap_bits.
    return uniform_bits.load(std::memory_order_acquire);
  }
  // Bit i = word i of the object is a pointer. For a published slot only.
  uint64_t read_heap_bits(uint32_t idx) const {
    // Acquire: pairs with the release store of kHeapBitsMixed (the filled bitmap).
    uint64_t u = uniform_bits.load(std::memory_order_acquire);
    if (u < kHeapBitsUnset) return u;
    uint32_t w = elemsize / 8;
    uint64_t mask = obj_word_mask;
    size_t bit = size_t(idx) * w;
    const uint64_t* p = &heap_bits[bit / 64];
    unsigned sh = bit % 64;
    uint64_t v = __atomic_load_n(p, __ATOMIC_RELAXED) >> sh;
    if (sh + w > 64) v |= __atomic_load_n(p + 1, __ATOMIC_RELAXED) << (64 - sh);
    return v & mask;
  }
  const gc_type* object_type(uint32_t idx) const {  // elemsize > 512 scan spans
    return __atomic_load_n(&obj_types[idx], __ATOMIC_RELAXED);
  }
};

// Sets up a span over [start, start + npages*kPageSize) for span class sc; clears its
// bitmaps (reusing the struct's block when it is large enough). Called under the heap lock.
void span_init(mspan* s, uintptr_t start, size_t npages, SpanClass sc, uint32_t sweepgen);
// Frees the bitmaps' block (the heap's end).
void span_release_bits(mspan* s);

// Intrusive singly linked stack of spans: the mcentral lists are only pushed and popped,
// and each operation touches the span it moves and no other (a doubly linked list's push
// and pop also wrote a neighbour's `prev`, a cache miss on a span nobody was about to use,
// under the mcentral lock).
struct SpanListHead {
  mspan* head = nullptr;
  size_t count = 0;
  void push(mspan* s) {
    s->next = head;
    head = s;
    count++;
  }
  mspan* pop() {
    mspan* s = head;
    if (s) {
      head = s->next;
      s->next = nullptr;
      count--;
    }
    return s;
  }
};

}  // namespace tricolor::internal
