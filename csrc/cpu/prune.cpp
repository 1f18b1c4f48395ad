// CPU kernel of lth_fast::prune_: validates everything and counts every ranking first, so a
// bad input raises before any mask is written; then every ranking writes its masks.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>

#include "common/op_checks.h"
#include "cpu/dispatch.h"
#include "cpu/select/one_pass.h"

namespace lth_fast::cpu {
namespace {

std::tuple<at::Tensor, at::Tensor> prune_cpu(at::TensorList weights, at::TensorList masks,
                                             at::ArrayRef<double> fractions,
                                             at::IntArrayRef counts, bool layerwise) {
  check_prune(weights, masks, fractions, counts, layerwise);
  const simd::SelectKernels& kern = select_kernels();
  const simd::DType dtype = weights.empty() ? simd::DType::f32 : simd_dtype(weights[0].scalar_type());

  std::vector<Run> runs;
  for (size_t i = 0; i < weights.size(); ++i)
    runs.push_back({weights[i].const_data_ptr(), reinterpret_cast<uint8_t*>(masks[i].data_ptr<bool>()),
                    weights[i].numel(), static_cast<int64_t>(i)});
  const bool by_count = !counts.empty();
  auto count = [&](size_t g) { return counts[counts.size() == 1 ? 0 : g]; };
  auto amount = [&](size_t g) {  // the amount of ranking g, as a number
    return by_count ? static_cast<double>(count(g)) : fractions[fractions.size() == 1 ? 0 : g];
  };

  // Every ranking is marked (one pass over all of them) and checked before any is finished;
  // on an error the marks are undone, leaving every mask as it was. A NaN anywhere is reported
  // before a count that exceeds its alive entries, as the reference does.
  const size_t groups = layerwise ? runs.size() : 1;
  std::vector<std::vector<Run>> rankings;
  std::vector<double> amounts;
  for (size_t g = 0; g < groups; ++g) {
    rankings.push_back(layerwise ? std::vector<Run>{runs[g]} : runs);
    amounts.push_back(amount(g));
  }
  std::vector<SelectPlan> plans = mark_selections(dtype, std::move(rankings), amounts, by_count,
                                                  kern);
  for (size_t g = 0; g < groups; ++g) {
    SelectPlan& p = plans[g];
    p.k = by_count ? count(g) : static_cast<int64_t>(std::nearbyint(amounts[g] * p.alive));
  }
  std::string error;
  for (const SelectPlan& p : plans)
    if (error.empty() && p.nan_index >= 0)
      error = c10::str("prune_: weights[", p.nan_index, "] contains NaN");
  for (size_t g = 0; g < groups && error.empty(); ++g)
    if (plans[g].k > plans[g].alive) {
      const size_t j = by_count && counts.size() > 1 ? g : 0;
      error = c10::str("prune_: amount[", j, "] = ", plans[g].k, " exceeds the ", plans[g].alive,
                       " alive entries", layerwise ? c10::str(" of weights[", g, "]") : "");
    }
  if (!error.empty()) {
    unmark_selections(plans, kern);
    TORCH_CHECK_VALUE(false, error);
  }

  const std::vector<SelectResult> results = finish_selections(plans, amounts, by_count, kern);
  at::Tensor stats = at::empty({static_cast<int64_t>(groups), 2}, at::kLong);
  at::Tensor thresholds = at::empty({static_cast<int64_t>(groups)}, at::kDouble);
  auto* s = stats.data_ptr<int64_t>();
  auto* th = thresholds.data_ptr<double>();
  for (size_t g = 0; g < groups; ++g) {
    s[2 * g] = results[g].alive;
    s[2 * g + 1] = results[g].pruned;
    th[g] = results[g].threshold;
  }
  return {stats, thresholds};
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("prune_", &prune_cpu); }

}  // namespace lth_fast::cpu
