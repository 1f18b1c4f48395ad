// CUDA kernel of lth_fast::prune_nm_ (docs/semantics.md, "N:M selection"): one thread per group
// of m entries, the same rule as the CPU kernels (cpu/simd/nm.h) on the same keys (raw bits,
// sign cleared), so the masks agree bit for bit. A first pass looks for NaNs and the host reads
// its flags (the one synchronisation) before any mask is written.
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/op_checks.h"

namespace lth_fast::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;

template <typename Bits>
constexpr Bits abs_bits() {
  return static_cast<Bits>(static_cast<Bits>(~Bits(0)) >> 1);
}

unsigned grid_for(int64_t items) {
  return static_cast<unsigned>(std::clamp<int64_t>((items + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

template <typename Bits>
__global__ void nan_kernel(const Bits* w, int64_t n, Bits inf, int* flag) {
  bool nan = false;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    nan |= static_cast<Bits>(w[i] & abs_bits<Bits>()) > inf;
  if (nan) *flag = 1;  // every writer stores the same value
}

// Group g is (block g / inner, position g % inner); its entries are `inner` apart.
template <typename Bits>
__global__ void keep_nm_kernel(const Bits* w, uint8_t* mask, int64_t groups, int64_t inner, int n,
                               int m, unsigned long long* stats) {
  unsigned long long alive_sum = 0, pruned_sum = 0;
  Bits key[64];
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups;
       g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (g / inner) * m * inner + g % inner;
    unsigned long long alive = 0;
    for (int j = 0; j < m; ++j) {
      const int64_t idx = base + j * inner;
      if (mask[idx]) {
        alive |= 1ull << j;
        key[j] = static_cast<Bits>(w[idx] & abs_bits<Bits>());
      }
    }
    const int count = __popcll(alive);
    alive_sum += count;
    if (count <= n) continue;
    for (int j = 0; j < m; ++j) {
      if (!(alive >> j & 1)) continue;
      int beaten = 0;
      for (int l = 0; l < m; ++l)
        beaten += (alive >> l & 1) && (key[l] > key[j] || (key[l] == key[j] && l < j));
      if (beaten >= n) {
        mask[base + j * inner] = 0;
        ++pruned_sum;
      }
    }
  }
  if (alive_sum) atomicAdd(&stats[0], alive_sum);
  if (pruned_sum) atomicAdd(&stats[1], pruned_sum);
}

template <typename Bits>
at::Tensor prune_nm_bits(at::TensorList weights, at::TensorList masks, int64_t n, int64_t m,
                         Bits inf) {
  const c10::Device device = weights[0].device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device.index()).stream();
  const int64_t count = static_cast<int64_t>(weights.size());
  const auto opts = at::TensorOptions().device(device);
  at::Tensor flags = at::zeros({count}, opts.dtype(at::kInt));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t numel = weights[i].numel();
    if (numel == 0) continue;
    nan_kernel<Bits><<<grid_for(numel), kThreads, 0, stream>>>(
        static_cast<const Bits*>(weights[i].const_data_ptr()), numel, inf,
        flags.data_ptr<int>() + i);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  std::vector<int> host(static_cast<size_t>(count));
  C10_CUDA_CHECK(cudaMemcpyAsync(host.data(), flags.data_ptr<int>(), count * sizeof(int),
                                 cudaMemcpyDeviceToHost, stream));
  C10_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (int64_t i = 0; i < count; ++i)
    TORCH_CHECK_VALUE(host[i] == 0, "prune_: weights[", i, "] contains NaN");

  at::Tensor stats = at::zeros({count, 2}, opts.dtype(at::kLong));
  for (int64_t i = 0; i < count; ++i) {
    const NmGeometry geo = nm_geometry(weights[i]);
    const int64_t groups = geo.outer * (geo.channels / m) * geo.inner;
    if (groups == 0) continue;
    keep_nm_kernel<Bits><<<grid_for(groups), kThreads, 0, stream>>>(
        static_cast<const Bits*>(weights[i].const_data_ptr()),
        reinterpret_cast<uint8_t*>(masks[i].data_ptr<bool>()), groups, geo.inner,
        static_cast<int>(n), static_cast<int>(m),
        reinterpret_cast<unsigned long long*>(stats.data_ptr<int64_t>() + 2 * i));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return stats;
}

at::Tensor prune_nm_cuda(at::TensorList weights, at::TensorList masks, int64_t n, int64_t m) {
  check_prune_nm(weights, masks, n, m);
  if (weights.empty()) return at::zeros({0, 2}, at::kLong);
  const c10::cuda::CUDAGuard guard(weights[0].device());
  switch (weights[0].scalar_type()) {
    case c10::kFloat: return prune_nm_bits<uint32_t>(weights, masks, n, m, 0x7F800000u);
    case c10::kDouble:
      return prune_nm_bits<uint64_t>(weights, masks, n, m, 0x7FF0000000000000ull);
    case c10::kHalf: return prune_nm_bits<uint16_t>(weights, masks, n, m, uint16_t(0x7C00));
    default: return prune_nm_bits<uint16_t>(weights, masks, n, m, uint16_t(0x7F80));  // bf16
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CUDA, m) { m.impl("prune_nm_", &prune_nm_cuda); }

}  // namespace lth_fast::cuda
