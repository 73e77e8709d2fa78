// The page source: the only place that obtains memory for the heap. Arenas come from
// mimalloc (the only file that includes mimalloc.h is page_source.cc); releasing pages to
// the OS and reserving metadata tables use the OS directly.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tricolor::internal {

inline constexpr size_t kArenaShift = 26;
inline constexpr size_t kArenaBytes = size_t{1} << kArenaShift;  // 64 MiB, as Go on linux/amd64

// `bytes` (a multiple of kArenaBytes) of zeroed memory aligned to kArenaBytes, or nullptr.
void* os_arena_alloc(size_t bytes);
void os_arena_free(void* p, size_t bytes);
// Returns the pages to the OS; they read as zero when touched again.
void os_release(void* p, size_t bytes);
// Zeroed, lazily committed memory for large metadata tables (never freed).
void* os_reserve_zeroed(size_t bytes);
void os_unreserve(void* p, size_t bytes);
// The machine's memory and swap in bytes (sysinfo; SIZE_MAX if unknown): the most one
// object can ever be backed by.
size_t os_backable_bytes();
// Resident set size of the process in bytes (from /proc/self/statm), 0 if unknown.
size_t os_rss_bytes();

}  // namespace tricolor::internal
