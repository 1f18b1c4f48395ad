// CUDA kernel of lth_fast::prune_: the same checks and results as cpu/prune.cpp, bit for bit.
//
// Host side: validate everything, build one chunk table over all tensors (a group per tensor
// when layerwise, so every ranking runs in the same launches), upload it with the amounts in
// one copy, then launch the radix select of radix_select.cuh on the current stream. k and
// alive are computed on the device; NaN and k > alive set device flags that stop the mask
// writes. The only synchronisation is the single read of those flags at the end, which is
// what lets this op raise ValueError with the CPU path's messages and touch no mask.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

#include "common/op_checks.h"
#include "common/tensor_list.h"
#include "cuda/multi_tensor.cuh"
#include "cuda/radix_select.cuh"

namespace lth_fast::cuda {
namespace {

// Blocks of the chunk kernels: enough to fill every SM (8 x 256 threads each), no more than
// there are chunks.
int chunk_grid(int64_t num_chunks, const c10::Device& device) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device.index()));
  return static_cast<int>(std::min<int64_t>(num_chunks, std::max(sms, 1) * int64_t(8)));
}

template <class K>
void launch_selection(const SelectArgs& a, int64_t groups, int grid, cudaStream_t stream) {
  for (int pass = 0; pass < Radix<K>::kPasses; ++pass) {
    if (a.num_chunks > 0) {
      hist_kernel<K><<<grid, kThreads, 0, stream>>>(a, pass);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    select_kernel<K><<<static_cast<unsigned>(groups), 32, 0, stream>>>(a, pass);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (a.num_chunks == 0) return;  // nothing to write (groups with no entries prune nothing)
  tie_count_kernel<K><<<grid, kThreads, 0, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  tie_scan_kernel<<<1, kScanThreads, 0, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  write_kernel<K><<<grid, kThreads, 0, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <class K>
std::tuple<at::Tensor, at::Tensor> prune_on_device(at::TensorList weights, at::TensorList masks,
                                                   at::ArrayRef<double> fractions,
                                                   at::IntArrayRef counts, bool layerwise) {
  const c10::Device device = weights[0].device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device.index()).stream();
  const size_t n = weights.size();
  const int64_t groups = layerwise ? static_cast<int64_t>(n) : 1;
  std::vector<Chunk> chunks;
  std::vector<int64_t> first;
  make_chunk_table(weights, layerwise, chunks, first);
  const size_t nc = chunks.size(), ng = static_cast<size_t>(groups);

  ArgBuffer buf;
  const size_t o_w = buf.upload<const void*>(n), o_m = buf.upload<uint8_t*>(n);
  const size_t o_chunks = buf.upload<Chunk>(nc), o_first = buf.upload<long long>(ng);
  const size_t o_frac = buf.upload<double>(ng), o_count = buf.upload<long long>(ng);
  const size_t o_status = buf.upload<Status>(1);
  const size_t o_hist = buf.zeroed<unsigned long long>(ng * Radix<K>::kBins);
  const size_t o_groups = buf.zeroed<GroupState>(ng);
  const size_t o_ties = buf.zeroed<unsigned long long>(nc), o_before = buf.zeroed<long long>(nc);
  buf.allocate(device);

  for (size_t i = 0; i < n; ++i) {
    buf.host<const void*>(o_w)[i] = weights[i].const_data_ptr();
    buf.host<uint8_t*>(o_m)[i] = reinterpret_cast<uint8_t*>(masks[i].data_ptr<bool>());
  }
  std::copy(chunks.begin(), chunks.end(), buf.host<Chunk>(o_chunks));
  const size_t given = fractions.empty() ? counts.size() : fractions.size();
  for (size_t g = 0; g < ng; ++g) {
    const size_t j = given == 1 ? 0 : g;  // one amount for all, or one per tensor
    buf.host<long long>(o_first)[g] = first[g];
    buf.host<double>(o_frac)[g] = fractions.empty() ? 0.0 : fractions[j];
    buf.host<long long>(o_count)[g] = counts.empty() ? 0 : counts[j];
  }
  Status* host_status = buf.host<Status>(o_status);
  *host_status = Status{ULLONG_MAX, ULLONG_MAX, 0};
  buf.send(stream);

  const auto opts = at::TensorOptions().device(device);
  at::Tensor stats = at::empty({groups, 2}, opts.dtype(at::kLong));
  at::Tensor thresholds = at::empty({groups}, opts.dtype(at::kDouble));

  SelectArgs a;
  a.weights = buf.dev_upload<const void* const>(o_w);
  a.masks = buf.dev_upload<uint8_t* const>(o_m);
  a.chunks = buf.dev_upload<const Chunk>(o_chunks);
  a.num_chunks = static_cast<long long>(nc);
  a.first_chunk = buf.dev_upload<const long long>(o_first);
  a.fractions = buf.dev_upload<const double>(o_frac);
  a.counts = buf.dev_upload<const long long>(o_count);
  a.by_count = counts.empty() ? 0 : 1;
  a.status = buf.dev_upload<Status>(o_status);
  a.groups = buf.dev_zeroed<GroupState>(o_groups);
  a.hist = buf.dev_zeroed<unsigned long long>(o_hist);
  a.tie_count = buf.dev_zeroed<unsigned long long>(o_ties);
  a.tie_before = buf.dev_zeroed<long long>(o_before);
  a.stats = reinterpret_cast<long long*>(stats.data_ptr<int64_t>());
  a.thresholds = thresholds.data_ptr<double>();
  launch_selection<K>(a, groups, nc > 0 ? chunk_grid(static_cast<int64_t>(nc), device) : 0,
                      stream);

  // The one synchronisation: read the error flags (through the pinned buffer, which also
  // keeps that buffer alive until the upload above has certainly completed).
  C10_CUDA_CHECK(cudaMemcpyAsync(host_status, a.status, sizeof(Status), cudaMemcpyDeviceToHost,
                                 stream));
  C10_CUDA_CHECK(cudaStreamSynchronize(stream));
  const Status st = *host_status;
  // Report what the CPU path and the reference report: a NaN anywhere first (the first tensor
  // holding one), then the first ranking whose count exceeds its alive entries.
  const bool nan = st.nan_tensor != ULLONG_MAX, bad = st.bad_group != ULLONG_MAX;
  TORCH_CHECK_VALUE(!nan, "prune_: weights[", st.nan_tensor, "] contains NaN");
  if (bad) {
    const int64_t g = static_cast<int64_t>(st.bad_group);
    long long row[2] = {0, 0};  // alive, k of the failing ranking
    C10_CUDA_CHECK(cudaMemcpyAsync(row, a.stats + 2 * g, sizeof row, cudaMemcpyDeviceToHost,
                                   stream));
    C10_CUDA_CHECK(cudaStreamSynchronize(stream));
    const size_t j = !counts.empty() && counts.size() > 1 ? static_cast<size_t>(g) : 0;
    TORCH_CHECK_VALUE(false, "prune_: amount[", j, "] = ", row[1], " exceeds the ", row[0],
                      " alive entries", layerwise ? c10::str(" of weights[", g, "]") : "");
  }
  return {stats, thresholds};
}

std::tuple<at::Tensor, at::Tensor> prune_cuda(at::TensorList weights, at::TensorList masks,
                                              at::ArrayRef<double> fractions,
                                              at::IntArrayRef counts, bool layerwise) {
  check_prune(weights, masks, fractions, counts, layerwise);
  const c10::Device device = common_device(weights);
  if (weights.empty()) {  // no tensor, so no device: answer like the CPU path, on the CPU
    const int64_t groups = layerwise ? 0 : 1;
    const int64_t k = counts.empty() ? 0 : counts[0];  // round(f * 0) == 0
    TORCH_CHECK_VALUE(groups == 0 || k == 0, "prune_: amount[0] = ", k,
                      " exceeds the 0 alive entries");
    at::Tensor stats = at::empty({groups, 2}, at::kLong), th = at::empty({groups}, at::kDouble);
    for (int64_t g = 0; g < groups; ++g) {
      stats.data_ptr<int64_t>()[2 * g] = stats.data_ptr<int64_t>()[2 * g + 1] = 0;
      th.data_ptr<double>()[g] = std::numeric_limits<double>::quiet_NaN();
    }
    return {stats, th};
  }
  TORCH_CHECK_VALUE(device.is_cuda(), "prune_: weights[0] is on ", device, ", expected a CUDA device");
  const c10::cuda::CUDAGuard guard(device);
  switch (weights[0].scalar_type()) {
    case at::kFloat: return prune_on_device<Keys<kF32>>(weights, masks, fractions, counts, layerwise);
    case at::kHalf: return prune_on_device<Keys<kF16>>(weights, masks, fractions, counts, layerwise);
    case at::kBFloat16:
      return prune_on_device<Keys<kBF16>>(weights, masks, fractions, counts, layerwise);
    default: return prune_on_device<Keys<kF64>>(weights, masks, fractions, counts, layerwise);
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CUDA, m) { m.impl("prune_", &prune_cuda); }

}  // namespace lth_fast::cuda
