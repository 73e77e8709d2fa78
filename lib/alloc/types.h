// gc_type: a precise pointer map, built by gc_type_new and used by the allocator (heap
// bits) and the marker (scanning). Types live as long as the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

struct gc_type {
  const char* name;
  size_t size;                   // bytes of one element (a multiple of 8 if it has pointers)
  size_t words;                  // size / 8 (at least 1)
  // Bit w = word w of an element is a pointer; as long as the last pointer word needs (a
  // type of 2^40 bytes with a pointer at its start takes one word, not 2 GiB).
  std::vector<uint64_t> ptrmask;
  uint64_t tile64;               // bits for words 0..63 of an object of repeated elements
  bool noscan;                   // no pointer at all
  bool conservative;             // every word may be a pointer (the type of gc_alloc(n, NULL))

  bool word_is_ptr(size_t w) const {
    if (conservative) return true;
    size_t i = w % words;
    return i / 64 < ptrmask.size() && (ptrmask[i / 64] >> (i % 64) & 1);
  }
};

namespace tricolor::internal {
// The type of objects allocated with a NULL type: scanned conservatively.
const gc_type* conservative_type();
}  // namespace tricolor::internal
