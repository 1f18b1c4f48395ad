// Torch-free elementwise kernels over one contiguous run: the masked SGD step and the rewind.
// float32 / float16 / bfloat16 / float64; half types are computed in float32 and rounded once.
#pragma once
#include <cstdint>

#include "cpu/simd/select.h"

namespace lth_fast::simd {

struct SgdParams {
  double lr, momentum, dampening, weight_decay;  // cast to the compute type, as torch does
  bool nesterov, maximize;
  bool init_buffers;  // first step: buffer = gradient (after weight decay), as torch.optim.SGD
};

// For alive entries exactly torch.optim.SGD's update (FMA where torch's CPU kernels use it);
// pruned entries end with p = 0 and buf = 0. buf is unused when momentum == 0.
using MaskedSgdFn = void (*)(DType t, void* p, const void* g, const uint8_t* m, void* buf,
                             int64_t n, const SgdParams& s);
// p = m ? snapshot : 0. stream: non-temporal stores (for lists far larger than the caches,
// where skipping the write-allocate saves bandwidth; for small or in-place lists they would
// evict what the next step reads).
using RewindFn = void (*)(DType t, void* p, const void* snapshot, const uint8_t* m, int64_t n,
                          bool stream);

struct UpdateKernels {
  MaskedSgdFn masked_sgd;
  RewindFn rewind;
};

const UpdateKernels* update_kernels(Isa isa);

}  // namespace lth_fast::simd
