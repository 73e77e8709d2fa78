// A translation unit that includes gc.h with TRICOLOR_NO_INLINE_ALLOC: gc_alloc and
// gc_alloc_noscan are the library's functions here (alloc_test.cc, "[inline]").
#define TRICOLOR_NO_INLINE_ALLOC 1
#include "tricolor/gc.h"

#if defined(gc_alloc) || defined(gc_alloc_noscan) || defined(TRICOLOR_INLINE_ALLOC)
#error "TRICOLOR_NO_INLINE_ALLOC leaves gc_alloc a function"
#endif

void* alloc_without_inline(size_t size, const gc_type* type) { return gc_alloc(size, type); }
void* alloc_noscan_without_inline(size_t size) { return gc_alloc_noscan(size); }
