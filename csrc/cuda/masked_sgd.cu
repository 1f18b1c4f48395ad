// CUDA kernel of lth_fast::masked_sgd_: one pass over every tensor of the list
// (multi_tensor_apply.cuh), no synchronisation and no host buffer (capturable in a CUDA graph).
// Semantics as cpu/masked_sgd.cpp and docs/semantics.md, "Masked SGD (masked_sgd_)":
// torch.optim.SGD on alive entries, exact zeros in params and buffers on pruned ones.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cuda/elementwise.cuh"
#include "cuda/multi_tensor_apply.cuh"

namespace lth_fast::cuda {
namespace {

template <typename A>
struct SgdScalars {
  A neg_lr, momentum, damp1, weight_decay;  // cast as torch casts its scalars
  bool nesterov, maximize, init_buffers;
};

// Lists: 0 params, 1 grads, 2 masks, 3 momentum_buffers (read and written only with Momentum).
template <typename Storage, bool Momentum>
struct SgdStep {
  using T = Storage;
  using A = typename Compute<T>::type;
  static constexpr int kLists = 4, kMask = 2;
  static constexpr unsigned kReads = Momentum ? 0b1111u : 0b0111u;
  static constexpr unsigned kWrites = Momentum ? 0b1001u : 0b0001u;
  SgdScalars<A> s;

  __device__ __forceinline__ void operator()(T& p, const T& g, uint8_t alive, T& b) const {
    if (!alive) {
      p = T(0);
      if (Momentum) b = T(0);
      return;
    }
    const A w = static_cast<A>(p);
    A d = static_cast<A>(g);
    if (s.maximize) d = -d;
    if (s.weight_decay != A(0)) d = fma(w, s.weight_decay, d);
    if (Momentum) {
      const A nb = s.init_buffers ? d : fma(d, s.damp1, static_cast<A>(b) * s.momentum);
      b = static_cast<T>(nb);
      d = s.nesterov ? fma(nb, s.momentum, d) : nb;
    }
    p = static_cast<T>(fma(d, s.neg_lr, w));
  }
};

template <typename T>
void run(at::TensorList params, at::TensorList grads, at::TensorList masks, at::TensorList bufs,
         double lr, double momentum, double dampening, double weight_decay, bool nesterov,
         bool maximize, bool init_buffers) {
  using A = typename Compute<T>::type;
  const SgdScalars<A> s{static_cast<A>(-lr), static_cast<A>(momentum),
                        static_cast<A>(1 - dampening), static_cast<A>(weight_decay),
                        nesterov, maximize, init_buffers};
  if (momentum != 0) {
    const at::TensorList lists[4] = {params, grads, masks, bufs};
    apply_elementwise(lists, SgdStep<T, true>{s});
  } else {
    // Without momentum the buffer list is empty: the params stand in for it, never touched.
    const at::TensorList lists[4] = {params, grads, masks, params};
    apply_elementwise(lists, SgdStep<T, false>{s});
  }
}

void masked_sgd_cuda(at::TensorList params, at::TensorList grads, at::TensorList masks,
                     at::TensorList momentum_buffers, double lr, double momentum,
                     double dampening, double weight_decay, bool nesterov, bool maximize,
                     bool init_buffers) {
  check_masked_sgd(params, grads, masks, momentum_buffers, lr, momentum, dampening, weight_decay,
                   nesterov);
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  const auto args = std::make_tuple(params, grads, masks, momentum_buffers, lr, momentum,
                                    dampening, weight_decay, nesterov, maximize, init_buffers);
  with_float_type(params[0].scalar_type(), "masked_sgd_",
                  [&](auto tag) { std::apply(run<decltype(tag)>, args); });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CUDA, m) { m.impl("masked_sgd_", &masked_sgd_cuda); }

}  // namespace lth_fast::cuda
