// Software prefetch for the streaming kernels (selection's marking and resolving passes, the
// bench's read probe): one core's hardware prefetchers keep too few lines in flight to reach
// the memory bandwidth, so the loops ask for data kPrefetchAhead elements ahead of their loads.
// Compiled with the base flags (prefetcht0 is in every x86-64; other CPUs get their own).
#pragma once
#include <cstdint>

namespace lth_fast::simd {

constexpr int64_t kPrefetchAhead = 1024;  // elements ahead of the loads

// Prefetches the line `bytes_ahead` past p. A prefetch never faults, so the address may lie
// past the buffer's end; it is computed as an integer, not by pointer arithmetic past the end.
inline void prefetch_ahead_of(const void* p, int64_t bytes_ahead) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + bytes_ahead));
}

}  // namespace lth_fast::simd
