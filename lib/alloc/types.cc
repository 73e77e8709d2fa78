// gc_type_new: precise pointer maps. See types.h.
#include "alloc/types.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "tricolor/gc.h"
#include "trace/log.h"

namespace tricolor::internal {

const gc_type* conservative_type() {
  static const gc_type t = [] {
    gc_type c{};
    c.name = "<conservative>";
    c.size = 8;
    c.words = 1;
    c.ptrmask = {1};
    c.tile64 = ~uint64_t{0};
    c.noscan = false;
    c.conservative = true;
    return c;
  }();
  return &t;
}

}  // namespace tricolor::internal

extern "C" const gc_type* gc_type_new(const char* name, size_t size, const size_t* offsets,
                                      size_t count) {
  using namespace tricolor::internal;
  if (!name) name = "<unnamed>";
  if (size == 0 || size > (size_t{1} << 40)) {
    log_error("gc_type_new(\"%s\"): size %zu is not a valid type size", name, size);
    return nullptr;
  }
  if (count && !offsets) {
    log_error("gc_type_new(\"%s\"): %zu pointer offsets but a NULL offsets array", name, count);
    return nullptr;
  }
  if (count && size % 8) {
    log_error("gc_type_new(\"%s\"): a type with pointers must have a size that is a multiple "
              "of 8 (got %zu)", name, size);
    return nullptr;
  }
  size_t end_words = 0;  // one past the last pointer word
  for (size_t i = 0; i < count; i++) {
    size_t off = offsets[i];
    if (off % 8 || off >= size || size - off < 8) {
      log_error("gc_type_new(\"%s\"): pointer offset %zu is not an aligned word inside %zu bytes",
                name, off, size);
      return nullptr;
    }
    end_words = std::max(end_words, off / 8 + 1);
  }
  auto* t = new gc_type();
  t->name = strdup(name);
  t->size = size;
  t->words = (size + 7) / 8;
  t->ptrmask.assign((end_words + 63) / 64, 0);
  for (size_t i = 0; i < count; i++)
    t->ptrmask[offsets[i] / 64 / 8] |= uint64_t{1} << (offsets[i] / 8 % 64);
  t->noscan = count == 0;
  t->conservative = false;
  t->tile64 = 0;
  for (size_t w = 0; w < 64; w++)
    if (t->word_is_ptr(w)) t->tile64 |= uint64_t{1} << w;
  // Types live as long as the process: the registry keeps each one reachable, also for a
  // leak checker, which does not look inside the collected heap that refers to them.
  static std::mutex mu;
  static auto& registry = *new std::vector<const gc_type*>();
  {
    std::lock_guard<std::mutex> g(mu);
    registry.push_back(t);
  }
  return t;
}

extern "C" const char* gc_type_name(const gc_type* type) {
  return type ? type->name : "<conservative>";
}
