// Torch-free STREAM-style bandwidth probes over float32 buffers, one set per ISA: what the
// bench's floor is measured with (docs/measuring.md). Each moves every byte once, with the
// widest vectors the ISA has; the write, copy and triad store with non-temporal (streaming)
// stores, which write a line without reading it first, so they move exactly
//   read 4 B, write 4 B, copy 8 B, triad 12 B per element.
// The update rewrites two of its three buffers in place with ordinary stores, as an optimizer
// step does (a line read and then written moves twice, and nothing more): 20 B per element;
// the vector ISAs stream four quarters of the buffers side by side.
// Some machines move mixed read and write traffic faster than either alone, which only such
// a pass shows.
#pragma once
#include <cstdint>

#include "cpu/simd/select.h"

namespace lth_fast::simd {

struct StreamKernels {
  // The sum of x's 32-bit words mod 2^32 (a checksum, so the reads cannot be dropped).
  uint64_t (*read)(const float* x, int64_t n);
  void (*write)(float* x, int64_t n, float value);
  void (*copy)(float* dst, const float* src, int64_t n);
  // a = b + s * c
  void (*triad)(float* a, const float* b, const float* c, float s, int64_t n);
  // c = c * s + b, then a = a + c (every product rounded before it is added)
  void (*update)(float* a, const float* b, float* c, float s, int64_t n);
};

// The probes of one ISA; nullptr where this CPU cannot run it.
const StreamKernels* stream_kernels(Isa isa);

}  // namespace lth_fast::simd
