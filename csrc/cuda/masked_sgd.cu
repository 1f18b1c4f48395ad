// CUDA kernel of lth_fast::masked_sgd_: one pass over every tensor of the list, 16-byte
// accesses where the pointers allow, no synchronisation and no host buffer (capturable in a
// CUDA graph). Semantics as cpu/masked_sgd.cpp: torch.optim.SGD on alive entries, exact zeros
// in params and buffers on pruned ones.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
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

template <bool Momentum, typename T, typename A>
__device__ __forceinline__ void sgd_one(T& p, T g, T& b, uint8_t alive, const SgdScalars<A>& s) {
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

template <typename T, bool Momentum>
__global__ void __launch_bounds__(kApplyThreads)
masked_sgd_kernel(ListArgs<4> a, SgdScalars<typename Compute<T>::type> s) {
  const int t = a.tensor_of[blockIdx.x];
  const int64_t start = int64_t(a.chunk_of[blockIdx.x]) * kApplyChunk;
  const int64_t n = min(kApplyChunk, a.numel[t] - start);
  T* p = static_cast<T*>(a.ptr[0][t]) + start;
  const T* g = static_cast<const T*>(a.ptr[1][t]) + start;
  const uint8_t* m = static_cast<const uint8_t*>(a.ptr[2][t]) + start;
  T* b = Momentum ? static_cast<T*>(a.ptr[3][t]) + start : nullptr;
  constexpr int V = Vec16<T>::kSize;
  T unused{};
  int64_t done = 0;
  if (aligned(p, 16) && aligned(g, 16) && (!Momentum || aligned(b, 16)) && aligned(m, V)) {
    const int64_t nv = n / V;
    for (int64_t i = threadIdx.x; i < nv; i += blockDim.x) {
      Vec16<T> pv = reinterpret_cast<Vec16<T>*>(p)[i];
      const Vec16<T> gv = reinterpret_cast<const Vec16<T>*>(g)[i];
      const MaskVec<V> mv = reinterpret_cast<const MaskVec<V>*>(m)[i];
      Vec16<T> bv;
      if (Momentum) bv = reinterpret_cast<Vec16<T>*>(b)[i];
#pragma unroll
      for (int j = 0; j < V; ++j) sgd_one<Momentum>(pv.v[j], gv.v[j], bv.v[j], mv.v[j], s);
      reinterpret_cast<Vec16<T>*>(p)[i] = pv;
      if (Momentum) reinterpret_cast<Vec16<T>*>(b)[i] = bv;
    }
    done = nv * V;
  }
  for (int64_t i = done + threadIdx.x; i < n; i += blockDim.x)
    sgd_one<Momentum>(p[i], g[i], Momentum ? b[i] : unused, m[i], s);
}

template <typename T>
void launch(at::TensorList params, at::TensorList grads, at::TensorList masks,
            at::TensorList bufs, const SgdScalars<typename Compute<T>::type>& s, bool momentum) {
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  // Without momentum the buffer list is empty: pass the params in its place, never touched.
  const at::TensorList lists[4] = {params, grads, masks, momentum ? bufs : params};
  for_each_batch<4>(lists, [&](const ListArgs<4>& args, int blocks) {
    if (momentum) masked_sgd_kernel<T, true><<<blocks, kApplyThreads, 0, stream>>>(args, s);
    else masked_sgd_kernel<T, false><<<blocks, kApplyThreads, 0, stream>>>(args, s);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

template <typename T>
void run(at::TensorList params, at::TensorList grads, at::TensorList masks, at::TensorList bufs,
         double lr, double momentum, double dampening, double weight_decay, bool nesterov,
         bool maximize, bool init_buffers) {
  using A = typename Compute<T>::type;
  const SgdScalars<A> s{static_cast<A>(-lr), static_cast<A>(momentum),
                        static_cast<A>(1 - dampening), static_cast<A>(weight_decay),
                        nesterov, maximize, init_buffers};
  launch<T>(params, grads, masks, bufs, s, momentum != 0);
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
