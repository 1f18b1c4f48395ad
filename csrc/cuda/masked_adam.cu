// CUDA kernel of lth_fast::masked_adam_: one pass over every tensor of the list
// (multi_tensor_apply.cuh), no synchronisation and no host buffer (capturable in a CUDA graph).
// Semantics and operation order as cpu/simd/update_portable.h and docs/semantics.md, "Masked
// Adam / AdamW (masked_adam_)": torch.optim.Adam / AdamW on alive entries, exact zeros in
// params and every moment on pruned ones.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cmath>

#include "common/op_checks.h"
#include "cuda/elementwise.cuh"
#include "cuda/multi_tensor_apply.cuh"

namespace lth_fast::cuda {
namespace {

template <typename A>
struct AdamScalars {
  A lerp_w;  // 1-beta1 when it is below 0.5, else (1-beta1)-1: torch's two lerp forms
  A beta2, one_minus_beta2, weight_decay, eps, bias_correction2_sqrt, neg_step_size;
  A decay;  // 1 - lr * weight_decay, for the decoupled (AdamW) decay of the weight
  bool lerp_small, maximize, decoupled;
};

// Correctly rounded division and square root even under -use_fast_math, as on the CPU; a
// product nvcc may not contract into an FMA (the CPU and torch round it first).
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// Lists: 0 params, 1 grads, 2 masks, 3 exp_avgs, 4 exp_avg_sqs, 5 max_exp_avg_sqs (read and
// written only with Amsgrad).
template <typename Storage, bool Amsgrad>
struct AdamStep {
  using T = Storage;
  using A = typename Compute<T>::type;
  static constexpr int kLists = 6, kMask = 2;
  static constexpr unsigned kReads = Amsgrad ? 0b111111u : 0b011111u;
  static constexpr unsigned kWrites = Amsgrad ? 0b111001u : 0b011001u;
  AdamScalars<A> s;

  __device__ __forceinline__ void operator()(T& p, const T& g, uint8_t alive, T& m1, T& m2,
                                             T& vmax) const {
    if (!alive) {
      p = m1 = m2 = T(0);
      if (Amsgrad) vmax = T(0);
      return;
    }
    A w = static_cast<A>(p);
    const A a0 = static_cast<A>(m1);
    A d = static_cast<A>(g);
    if (s.maximize) d = -d;
    if (s.weight_decay != A(0)) {
      if (s.decoupled) w = mul_rn(w, s.decay);
      else d = fma(w, s.weight_decay, d);
    }
    const A a = fma(s.lerp_w, d - a0, s.lerp_small ? a0 : d);
    const A v = fma(s.one_minus_beta2 * d, d, static_cast<A>(m2) * s.beta2);
    A second = v;
    if (Amsgrad) {  // torch.maximum: NaN from either side
      const A old = static_cast<A>(vmax);
      second = (isnan(old) || old > v) ? old : v;
      vmax = static_cast<T>(second);
    }
    const A denom = div_rn(sqrt_rn(second), s.bias_correction2_sqrt) + s.eps;
    m1 = static_cast<T>(a);
    m2 = static_cast<T>(v);
    p = static_cast<T>(w + div_rn(s.neg_step_size * a, denom));
  }
};

template <typename T>
void run(at::TensorList params, at::TensorList grads, at::TensorList masks,
         at::TensorList exp_avgs, at::TensorList exp_avg_sqs, at::TensorList max_exp_avg_sqs,
         double lr, double beta1, double beta2, double eps, double weight_decay, double step,
         bool amsgrad, bool maximize, bool decoupled) {
  using A = typename Compute<T>::type;
  // Host side in double, as torch.optim.Adam: bias corrections, step size, sqrt via pow.
  const double bc1 = 1 - std::pow(beta1, step), bc2 = 1 - std::pow(beta2, step);
  const double w = 1 - beta1;
  const bool small = std::fabs(static_cast<A>(w)) < A(0.5);
  const AdamScalars<A> s{small ? static_cast<A>(w) : static_cast<A>(w) - A(1),
                         static_cast<A>(beta2), static_cast<A>(1 - beta2),
                         static_cast<A>(weight_decay), static_cast<A>(eps),
                         static_cast<A>(std::pow(bc2, 0.5)), static_cast<A>(-(lr / bc1)),
                         static_cast<A>(1 - lr * weight_decay), small, maximize, decoupled};
  if (amsgrad) {
    const at::TensorList lists[6] = {params, grads, masks, exp_avgs, exp_avg_sqs,
                                     max_exp_avg_sqs};
    apply_elementwise(lists, AdamStep<T, true>{s});
  } else {
    // Without amsgrad the max list is empty: the params stand in for it, never touched.
    const at::TensorList lists[6] = {params, grads, masks, exp_avgs, exp_avg_sqs, params};
    apply_elementwise(lists, AdamStep<T, false>{s});
  }
}

void masked_adam_cuda(at::TensorList params, at::TensorList grads, at::TensorList masks,
                      at::TensorList exp_avgs, at::TensorList exp_avg_sqs,
                      at::TensorList max_exp_avg_sqs, double lr, double beta1, double beta2,
                      double eps, double weight_decay, double step, bool amsgrad, bool maximize,
                      bool decoupled_weight_decay) {
  check_masked_adam(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, beta1,
                    beta2, eps, weight_decay, step, amsgrad);
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  const auto args = std::make_tuple(params, grads, masks, exp_avgs, exp_avg_sqs,
                                    max_exp_avg_sqs, lr, beta1, beta2, eps, weight_decay, step,
                                    amsgrad, maximize, decoupled_weight_decay);
  with_float_type(params[0].scalar_type(), "masked_adam_",
                  [&](auto tag) { std::apply(run<decltype(tag)>, args); });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CUDA, m) { m.impl("masked_adam_", &masked_adam_cuda); }

}  // namespace lth_fast::cuda
