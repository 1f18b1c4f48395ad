// CUDA kernel of lth_fast::rewind_: params = snapshot where masks else 0, one pass over every
// tensor, 16-byte accesses where the pointers allow, capturable in a CUDA graph.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cuda/elementwise.cuh"
#include "cuda/multi_tensor_apply.cuh"

namespace lth_fast::cuda {
namespace {

template <typename T>
__global__ void __launch_bounds__(kApplyThreads) rewind_kernel(ListArgs<3> a) {
  const int t = a.tensor_of[blockIdx.x];
  const int64_t start = int64_t(a.chunk_of[blockIdx.x]) * kApplyChunk;
  const int64_t n = min(kApplyChunk, a.numel[t] - start);
  T* p = static_cast<T*>(a.ptr[0][t]) + start;
  const T* s = static_cast<const T*>(a.ptr[1][t]) + start;
  const uint8_t* m = static_cast<const uint8_t*>(a.ptr[2][t]) + start;
  constexpr int V = Vec16<T>::kSize;
  int64_t done = 0;
  if (aligned(p, 16) && aligned(s, 16) && aligned(m, V)) {
    const int64_t nv = n / V;
    for (int64_t i = threadIdx.x; i < nv; i += blockDim.x) {
      Vec16<T> v = reinterpret_cast<const Vec16<T>*>(s)[i];
      const MaskVec<V> mv = reinterpret_cast<const MaskVec<V>*>(m)[i];
#pragma unroll
      for (int j = 0; j < V; ++j)
        if (!mv.v[j]) v.v[j] = T(0);
      reinterpret_cast<Vec16<T>*>(p)[i] = v;
    }
    done = nv * V;
  }
  for (int64_t i = done + threadIdx.x; i < n; i += blockDim.x) p[i] = m[i] ? s[i] : T(0);
}

template <typename T>
void run(at::TensorList params, at::TensorList snapshot, at::TensorList masks) {
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const at::TensorList lists[3] = {params, snapshot, masks};
  for_each_batch<3>(lists, [&](const ListArgs<3>& args, int blocks) {
    rewind_kernel<T><<<blocks, kApplyThreads, 0, stream>>>(args);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void rewind_cuda(at::TensorList params, at::TensorList snapshot, at::TensorList masks) {
  check_rewind(params, snapshot, masks);
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  with_float_type(params[0].scalar_type(), "rewind_",
                  [&](auto tag) { run<decltype(tag)>(params, snapshot, masks); });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CUDA, m) { m.impl("rewind_", &rewind_cuda); }

}  // namespace lth_fast::cuda
