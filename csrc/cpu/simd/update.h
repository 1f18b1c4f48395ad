// Torch-free elementwise kernels over one contiguous run: the masked SGD and Adam steps and the
// rewind.
// float32 / float16 / bfloat16 / float64; half types are computed in float32 and rounded once.
#pragma once
#include <cmath>
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

struct AdamParams {
  double lr, beta1, beta2, eps, weight_decay;  // cast to the compute type, as torch does
  bool maximize;
  bool amsgrad;    // max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq) feeds the denominator
  bool decoupled;  // AdamW: w *= 1 - lr * weight_decay first, instead of g += weight_decay * w
  // Computed once on the host in double, exactly as torch.optim.Adam (single-tensor) does:
  double neg_step_size;          // -lr / (1 - beta1^step)
  double bias_correction2_sqrt;  // (1 - beta2^step) ** 0.5 (pow, as Python's **)
  double decay;                  // 1 - lr * weight_decay (used when decoupled)
};

inline AdamParams make_adam_params(double lr, double beta1, double beta2, double eps,
                                   double weight_decay, double step, bool maximize, bool amsgrad,
                                   bool decoupled) {
  const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
  return {lr,        beta1,       beta2,  eps, weight_decay, maximize, amsgrad, decoupled,
          -(lr / bc1), std::pow(bc2, 0.5), 1 - lr * weight_decay};
}

// For alive entries torch.optim.Adam's / AdamW's update, with torch's CPU operation order:
// weight decay (L2 into the gradient, or the decoupled decay of the weight), exp_avg by lerp,
// exp_avg_sq = fma((1-b2)*g, g, b2*v), with amsgrad vmax = max(vmax, exp_avg_sq) (NaN from
// either side propagates, as torch.maximum), p + (-ss*m)/denom; sqrt is the correctly rounded
// one. Pruned entries end with p = m1 = m2 = vmax = 0. vmax is unused (may be null) without
// amsgrad.
using MaskedAdamFn = void (*)(DType t, void* p, const void* g, const uint8_t* m, void* exp_avg,
                              void* exp_avg_sq, void* max_exp_avg_sq, int64_t n,
                              const AdamParams& s);

struct UpdateKernels {
  MaskedSgdFn masked_sgd;
  RewindFn rewind;
  MaskedAdamFn masked_adam;
};

const UpdateKernels* update_kernels(Isa isa);

}  // namespace lth_fast::simd
