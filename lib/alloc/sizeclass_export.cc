// The size-to-class tables under the C names that gc.h's inline allocation fast paths read
// (tricolor_size_to_class8, tricolor_size_to_class128). This file does not include gc.h:
// there the tables are declared as plain byte arrays, here they are defined as std::arrays
// of the same bytes, initialised from the generated ones (alloc/sizeclasses.h).
#include <array>

#include "alloc/sizeclasses.h"

extern "C" {
__attribute__((visibility("default"))) extern constexpr std::array<uint8_t, 129>
    tricolor_size_to_class8 = std::to_array(tricolor::internal::kSizeToClass8);
__attribute__((visibility("default"))) extern constexpr std::array<uint8_t, 249>
    tricolor_size_to_class128 = std::to_array(tricolor::internal::kSizeToClass128);
}

static_assert(sizeof(tricolor_size_to_class8) == 129 && sizeof(tricolor_size_to_class128) == 249);
