// Checks of each op's arguments, shared by every device so that every device raises the same
// errors (messages name the op, the list and the index; TypeError for a dtype, ValueError for
// everything else). Each runs before the op writes anything. The list checks themselves are
// in common/tensor_list.h; the rules are those of docs/semantics.md.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <cstddef>
#include <cstdint>

namespace lth_fast {

// prune_: exactly one of fractions/counts is given: one value, or with `layerwise` one per
// tensor (n); fractions lie in [0, 1], counts are non-negative.
void check_amounts(c10::ArrayRef<double> fractions, c10::ArrayRef<int64_t> counts,
                   bool layerwise, size_t n);

// prune_: everything checked before a weight is read: the two lists and the amounts.
void check_prune(at::TensorList weights, at::TensorList masks, c10::ArrayRef<double> fractions,
                 c10::ArrayRef<int64_t> counts, bool layerwise);

// masked_sgd_: the lists, and torch.optim.SGD's own rules on the hyperparameters;
// momentum_buffers is like params with a momentum, empty without.
void check_masked_sgd(at::TensorList params, at::TensorList grads, at::TensorList masks,
                      at::TensorList momentum_buffers, double lr, double momentum,
                      double dampening, double weight_decay, bool nesterov);

// masked_adam_: the lists (max_exp_avg_sqs like params with amsgrad, else empty),
// torch.optim.Adam's own rules on the hyperparameters, and the step count the bias corrections
// need (>= 1: at step 0 they divide by zero).
void check_masked_adam(at::TensorList params, at::TensorList grads, at::TensorList masks,
                       at::TensorList exp_avgs, at::TensorList exp_avg_sqs,
                       at::TensorList max_exp_avg_sqs, double lr, double beta1, double beta2,
                       double eps, double weight_decay, double step, bool amsgrad);

// rewind_: params (float, one dtype, contiguous, one device), snapshot like params, masks like
// params but torch.bool.
void check_rewind(at::TensorList params, at::TensorList snapshot, at::TensorList masks);

// N:M selection (prune_nm_): a tensor of shape [O, C, *K] is seen as [outer, channels, inner] =
// [O, C, prod(K)], its groups of m running along C; a 1-D tensor is [1, C, 1], a 0-dim one
// [1, 1, 1]. A group is m entries `inner` apart.
struct NmGeometry {
  int64_t outer, channels, inner;
};
NmGeometry nm_geometry(const at::Tensor& t);
constexpr int64_t kNmMaxM = 64;  // the largest group: the kernels keep a group's keys on the stack

// prune_nm_: weights (float, one dtype, contiguous, one device), masks like weights but
// torch.bool, 1 <= n <= m <= kNmMaxM, and every tensor's channels a multiple of m.
void check_prune_nm(at::TensorList weights, at::TensorList masks, int64_t n, int64_t m);

// mask_distance: masks_a holds torch.bool masks or bit-packed torch.uint8 masks (pack_bits:
// 1-D, ceil(n / 8) bytes), one dtype, contiguous, one device; masks_b is like masks_a; numels
// is empty for bool masks and gives each packed mask's element count for uint8 ones.
void check_mask_distance(at::TensorList masks_a, at::TensorList masks_b,
                         c10::ArrayRef<int64_t> numels);

}  // namespace lth_fast
