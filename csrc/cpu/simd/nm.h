// Torch-free kernels for N:M selection (docs/semantics.md, "N:M selection"), on raw pointers.
//
// A tensor [O, C, *K] is a sequence of *blocks*: for each output o and each group g of m input
// channels, the m * stride weights of channels g*m .. g*m+m-1 (stride = prod(K), 1 for Linear
// and 1-D tensors). A block holds `stride` groups, one per position s < stride, whose m entries
// are `stride` apart. In each group, alive entry i is kept iff fewer than n alive entries of
// the group beat it, where j beats i if |w_j| > |w_i|, or |w_j| == |w_i| and j < i. Magnitudes
// are compared as keys (raw bits, sign cleared; select.h), so the order is exact for every
// dtype and -0.0 == +0.0.
#pragma once
#include <cstdint>

#include "cpu/simd/select.h"

namespace lth_fast::simd {

struct NmCounts {
  int64_t alive = 0;   // alive entries before
  int64_t pruned = 0;  // of those, the ones whose mask was cleared
};

// True if any of the n weights is NaN.
using HasNanFn = bool (*)(DType t, const void* w, int64_t n);
// Applies the rule to `blocks` consecutive blocks starting at w / mask (1 <= n <= m <= 64) and
// adds what it did to *out: the mask of each alive entry that loses becomes 0; every other
// mask byte keeps its value (bool bytes are 0 or 1, which a vector kernel may store again).
using KeepNmFn = void (*)(DType t, const void* w, uint8_t* mask, int64_t blocks, int64_t stride,
                          int n, int m, NmCounts* out);

struct NmKernels {
  HasNanFn has_nan;
  KeepNmFn keep_nm;
};

// The kernels of one ISA; nullptr where this CPU cannot run it.
const NmKernels* nm_kernels(Isa isa);

}  // namespace lth_fast::simd
