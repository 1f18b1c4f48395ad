// CPU kernel of lth_fast::prune_nm_ (docs/semantics.md, "N:M selection"): every check, the NaN
// scan included, runs before the first mask is written; then one parallel pass applies the
// rule, block by block (cpu/simd/nm.h), and counts what it did per tensor.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/op_checks.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace lth_fast::cpu {
namespace {

struct BlockRun {  // blocks [first, first + count) of one tensor
  int64_t tensor, first, count;
};

// Whole blocks (a block holds whole groups, so no group is split between threads), about
// chunk_len() elements a run, in list order.
std::vector<BlockRun> block_runs(at::TensorList weights, int64_t m, int64_t* total) {
  *total = 0;
  for (const at::Tensor& w : weights) *total += w.numel();
  const int64_t target = chunk_len(*total);
  std::vector<BlockRun> runs;
  for (size_t i = 0; i < weights.size(); ++i) {
    const NmGeometry g = nm_geometry(weights[i]);
    const int64_t block = m * g.inner, blocks = g.outer * (g.channels / m);
    if (block == 0) continue;
    const int64_t per_run = std::max<int64_t>(1, target / block);
    for (int64_t b = 0; b < blocks; b += per_run)
      runs.push_back({static_cast<int64_t>(i), b, std::min(per_run, blocks - b)});
  }
  return runs;
}

// The first tensor (by index) holding a NaN, or -1.
int64_t first_nan(at::TensorList weights, simd::DType dtype, const simd::NmKernels& kern) {
  std::atomic<int64_t> first{std::numeric_limits<int64_t>::max()};
  for_each_chunk(weights, [&](int64_t t, int64_t start, int64_t len) {
    if (t >= first.load(std::memory_order_relaxed)) return;
    if (!kern.has_nan(dtype, const_element_ptr(weights, t, start), len)) return;
    int64_t seen = first.load(std::memory_order_relaxed);
    while (t < seen && !first.compare_exchange_weak(seen, t, std::memory_order_relaxed)) {
    }
  });
  const int64_t found = first.load();
  return found == std::numeric_limits<int64_t>::max() ? -1 : found;
}

at::Tensor prune_nm_cpu(at::TensorList weights, at::TensorList masks, int64_t n, int64_t m) {
  check_prune_nm(weights, masks, n, m);
  const int64_t count = static_cast<int64_t>(weights.size());
  at::Tensor stats = at::zeros({count, 2}, at::kLong);
  if (weights.empty()) return stats;
  const simd::NmKernels& kern = nm_kernels();
  const simd::DType dtype = simd_dtype(weights[0].scalar_type());
  const int64_t nan_at = first_nan(weights, dtype, kern);
  TORCH_CHECK_VALUE(nan_at < 0, "prune_: weights[", nan_at, "] contains NaN");

  int64_t total = 0;
  const std::vector<BlockRun> runs = block_runs(weights, m, &total);
  std::vector<std::atomic<int64_t>> alive(count), pruned(count);
  for (int64_t i = 0; i < count; ++i) {
    alive[i].store(0, std::memory_order_relaxed);
    pruned[i].store(0, std::memory_order_relaxed);
  }
  const int64_t grain =
      total < kSerialBelow ? std::max<int64_t>(1, static_cast<int64_t>(runs.size())) : 1;
  at::parallel_for(0, static_cast<int64_t>(runs.size()), grain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const BlockRun& run = runs[r];
      const int64_t inner = nm_geometry(weights[run.tensor]).inner;
      const int64_t start = run.first * m * inner;
      simd::NmCounts c;
      kern.keep_nm(dtype, const_element_ptr(weights, run.tensor, start),
                   reinterpret_cast<uint8_t*>(element_ptr(masks, run.tensor, start)), run.count,
                   inner, static_cast<int>(n), static_cast<int>(m), &c);
      alive[run.tensor].fetch_add(c.alive, std::memory_order_relaxed);
      pruned[run.tensor].fetch_add(c.pruned, std::memory_order_relaxed);
    }
  });
  int64_t* s = stats.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    s[2 * i] = alive[i].load(std::memory_order_relaxed);
    s[2 * i + 1] = pruned[i].load(std::memory_order_relaxed);
  }
  return stats;
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("prune_nm_", &prune_nm_cpu); }

}  // namespace lth_fast::cpu
