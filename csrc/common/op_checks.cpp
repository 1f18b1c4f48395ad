#include "common/op_checks.h"

#include <c10/util/Exception.h>

#include "common/overlap.h"
#include "common/tensor_list.h"

namespace lth_fast {

void check_amounts(c10::ArrayRef<double> fractions, c10::ArrayRef<int64_t> counts,
                   bool layerwise, size_t n) {
  TORCH_CHECK_VALUE(fractions.empty() != counts.empty(),
                    "prune_: give exactly one of fractions and counts");
  const size_t given = fractions.empty() ? counts.size() : fractions.size();
  TORCH_CHECK_VALUE(given == 1 || (layerwise && given == n), "prune_: ",
                    layerwise ? "layerwise amounts must be one value or one per tensor ("
                              : "a global ranking takes one amount (",
                    n, " tensors), got ", given);
  for (size_t i = 0; i < fractions.size(); ++i)
    TORCH_CHECK_VALUE(fractions[i] >= 0.0 && fractions[i] <= 1.0, "prune_: amount[", i,
                      "] = ", fractions[i], " is not a fraction in [0, 1]");
  for (size_t i = 0; i < counts.size(); ++i)
    TORCH_CHECK_VALUE(counts[i] >= 0, "prune_: amount[", i, "] = ", counts[i],
                      " is a negative count");
}

void check_prune(at::TensorList weights, at::TensorList masks, c10::ArrayRef<double> fractions,
                 c10::ArrayRef<int64_t> counts, bool layerwise) {
  check_float_list("prune_", "weights", weights, common_device(weights));
  check_like("prune_", "masks", masks, "weights", weights, at::kBool);
  check_amounts(fractions, counts, layerwise, weights.size());
  check_no_overlap("prune_", {{"weights", weights, false}, {"masks", masks, true}});
}

void check_masked_sgd(at::TensorList params, at::TensorList grads, at::TensorList masks,
                      at::TensorList momentum_buffers, double lr, double momentum,
                      double dampening, double weight_decay, bool nesterov) {
  const char* op = "masked_sgd_";
  check_update_lists(op, params, grads, masks);
  TORCH_CHECK_VALUE(lr >= 0, op, ": invalid learning rate ", lr);
  TORCH_CHECK_VALUE(momentum >= 0, op, ": invalid momentum ", momentum);
  TORCH_CHECK_VALUE(weight_decay >= 0, op, ": invalid weight_decay ", weight_decay);
  TORCH_CHECK_VALUE(!nesterov || (momentum > 0 && dampening == 0), op,
                    ": nesterov momentum requires a momentum and zero dampening");
  if (momentum != 0) {
    check_like(op, "momentum_buffers", momentum_buffers, "params", params, std::nullopt);
  } else {
    TORCH_CHECK_VALUE(momentum_buffers.empty(), op,
                      ": momentum_buffers must be empty when momentum is 0");
  }
  check_no_overlap(op, {{"params", params, true},
                        {"grads", grads, false},
                        {"masks", masks, false},
                        {"momentum_buffers", momentum_buffers, true}});
}

void check_masked_adam(at::TensorList params, at::TensorList grads, at::TensorList masks,
                       at::TensorList exp_avgs, at::TensorList exp_avg_sqs,
                       at::TensorList max_exp_avg_sqs, double lr, double beta1, double beta2,
                       double eps, double weight_decay, double step, bool amsgrad) {
  const char* op = "masked_adam_";
  check_update_lists(op, params, grads, masks);
  check_like(op, "exp_avgs", exp_avgs, "params", params, std::nullopt);
  check_like(op, "exp_avg_sqs", exp_avg_sqs, "params", params, std::nullopt);
  if (amsgrad) {
    check_like(op, "max_exp_avg_sqs", max_exp_avg_sqs, "params", params, std::nullopt);
  } else {
    TORCH_CHECK_VALUE(max_exp_avg_sqs.empty(), op,
                      ": max_exp_avg_sqs must be empty when amsgrad is off");
  }
  // Written as !(x in range) so that NaN fails too.
  TORCH_CHECK_VALUE(lr >= 0, op, ": invalid learning rate ", lr);
  TORCH_CHECK_VALUE(beta1 >= 0 && beta1 < 1, op, ": invalid beta1 ", beta1,
                    " (need 0 <= beta1 < 1)");
  TORCH_CHECK_VALUE(beta2 >= 0 && beta2 < 1, op, ": invalid beta2 ", beta2,
                    " (need 0 <= beta2 < 1)");
  TORCH_CHECK_VALUE(eps >= 0, op, ": invalid epsilon ", eps);
  TORCH_CHECK_VALUE(weight_decay >= 0, op, ": invalid weight_decay ", weight_decay);
  TORCH_CHECK_VALUE(step >= 1, op, ": invalid step ", step,
                    " (the step count after this step's increment, >= 1)");
  check_no_overlap(op, {{"params", params, true},
                        {"grads", grads, false},
                        {"masks", masks, false},
                        {"exp_avgs", exp_avgs, true},
                        {"exp_avg_sqs", exp_avg_sqs, true},
                        {"max_exp_avg_sqs", max_exp_avg_sqs, true}});
}

void check_rewind(at::TensorList params, at::TensorList snapshot, at::TensorList masks) {
  check_float_list("rewind_", "params", params, common_device(params));
  check_like("rewind_", "snapshot", snapshot, "params", params, std::nullopt);
  check_like("rewind_", "masks", masks, "params", params, at::kBool);
  check_no_overlap("rewind_", {{"params", params, true},
                               {"snapshot", snapshot, false},
                               {"masks", masks, false}});
}

void check_mask_distance(at::TensorList masks_a, at::TensorList masks_b,
                         c10::ArrayRef<int64_t> numels) {
  const char* op = "mask_distance";
  const c10::Device device = common_device(masks_a);
  for (size_t i = 0; i < masks_a.size(); ++i) {
    const at::Tensor& t = masks_a[i];
    TORCH_CHECK_VALUE(t.defined(), op, ": masks_a[", i, "] is undefined");
    TORCH_CHECK_TYPE(t.scalar_type() == at::kBool || t.scalar_type() == at::kByte, op,
                     ": masks_a[", i, "] must be torch.bool or bit-packed torch.uint8, got ",
                     t.scalar_type());
    TORCH_CHECK_TYPE(t.scalar_type() == masks_a[0].scalar_type(), op, ": masks_a[", i,
                     "] has dtype ", t.scalar_type(), " but masks_a[0] has ",
                     masks_a[0].scalar_type(), "; one list holds one dtype");
    TORCH_CHECK_VALUE(t.device() == device, op, ": masks_a[", i, "] is on ", t.device(),
                      ", expected ", device);
    TORCH_CHECK_VALUE(t.is_contiguous(), op, ": masks_a[", i, "] must be contiguous");
  }
  check_like(op, "masks_b", masks_b, "masks_a", masks_a, std::nullopt);
  const bool packed = !masks_a.empty() && masks_a[0].scalar_type() == at::kByte;
  if (masks_a.empty()) {
    TORCH_CHECK_VALUE(numels.empty(), op, ": numels has ", numels.size(),
                      " counts but masks_a has 0 tensors");
    return;
  }
  if (!packed) {
    TORCH_CHECK_VALUE(numels.empty(), op, ": numels is only for bit-packed uint8 masks; "
                      "torch.bool masks count their own elements");
    return;
  }
  TORCH_CHECK_VALUE(!numels.empty(), op, ": bit-packed uint8 masks need numels, the element "
                    "count of each mask");
  TORCH_CHECK_VALUE(numels.size() == masks_a.size(), op, ": numels has ", numels.size(),
                    " counts but masks_a has ", masks_a.size(), " tensors");
  for (size_t i = 0; i < numels.size(); ++i) {
    TORCH_CHECK_VALUE(numels[i] >= 0, op, ": numels[", i, "] = ", numels[i], " is negative");
    const int64_t bytes = numels[i] / 8 + (numels[i] % 8 != 0);
    TORCH_CHECK_VALUE(masks_a[i].dim() == 1 && masks_a[i].numel() == bytes, op, ": masks_a[", i,
                      "] has shape ", masks_a[i].sizes(), " but numels[", i, "] = ", numels[i],
                      " packs into uint8 [", bytes, "]");
  }
}

NmGeometry nm_geometry(const at::Tensor& t) {
  if (t.dim() == 0) return {1, 1, 1};
  if (t.dim() == 1) return {1, t.size(0), 1};
  int64_t inner = 1;
  for (int64_t d = 2; d < t.dim(); ++d) inner *= t.size(d);
  return {t.size(0), t.size(1), inner};
}

void check_prune_nm(at::TensorList weights, at::TensorList masks, int64_t n, int64_t m) {
  check_float_list("prune_", "weights", weights, common_device(weights));
  check_like("prune_", "masks", masks, "weights", weights, at::kBool);
  TORCH_CHECK_VALUE(1 <= n && n <= m && m <= kNmMaxM, "prune_: N:M needs 1 <= n <= m <= ",
                    kNmMaxM, ", got n=", n, ", m=", m);
  for (size_t i = 0; i < weights.size(); ++i) {
    const int64_t channels = nm_geometry(weights[i]).channels;
    TORCH_CHECK_VALUE(channels % m == 0, "prune_: weights[", i, "] has shape ",
                      weights[i].sizes(), ", whose input dimension (", channels,
                      " entries) is not a multiple of m = ", m);
  }
  check_no_overlap("prune_", {{"weights", weights, false}, {"masks", masks, true}});
}

}  // namespace lth_fast
