// The generated size-class table: lookup, alignment, waste and the division magic.
#include <catch2/catch.hpp>

#include "alloc/sizeclasses.h"

using namespace tricolor::internal;

TEST_CASE("every size 1..32768 maps to the smallest class that fits", "[sizeclasses]") {
  for (size_t size = 1; size <= kMaxSmallSize; size++) {
    uint32_t c = size_to_class(size);
    REQUIRE(c >= 1);
    REQUIRE(c < uint32_t(kNumSizeClasses));
    INFO("size " << size << " class " << c);
    REQUIRE(kClassToSize[c] >= size);
    REQUIRE(kClassToSize[c - 1] < size);  // class 0 has size 0, so c == 1 is fine too
  }
}

TEST_CASE("classes are 16-aligned from 16 B and fill their spans", "[sizeclasses]") {
  REQUIRE(kClassToSize[0] == 0);
  REQUIRE(kClassToSize[1] == 8);
  REQUIRE(kClassToSize[kNumSizeClasses - 1] == kMaxSmallSize);
  for (int c = 1; c < kNumSizeClasses; c++) {
    size_t size = kClassToSize[c];
    size_t span = size_t(kClassToNPages[c]) * kPageSize;
    if (size >= 16) REQUIRE(size % 16 == 0);
    REQUIRE(kClassToNElems[c] == span / size);
    REQUIRE(span - kClassToNElems[c] * size <= span / 8);  // tail waste bound, as Go
  }
}

TEST_CASE("object index by multiplication equals division for every offset", "[sizeclasses]") {
  for (int c = 1; c < kNumSizeClasses; c++) {
    size_t size = kClassToSize[c];
    size_t span = size_t(kClassToNPages[c]) * kPageSize;
    for (size_t off = 0; off < span; off++) {
      if (object_index(off, kClassToDivMul[c]) != off / size) {
        FAIL("class " << c << " offset " << off);
      }
    }
  }
}
