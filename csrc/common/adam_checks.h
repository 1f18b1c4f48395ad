// Checks of masked_adam_'s arguments, shared by every device: the lists (common/tensor_list.h)
// and torch.optim.Adam's own rules on the hyperparameters, plus the step count the bias
// corrections need (>= 1: at step 0 they divide by zero).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "common/tensor_list.h"

namespace lth_fast {

inline void check_masked_adam(at::TensorList params, at::TensorList grads, at::TensorList masks,
                              at::TensorList exp_avgs, at::TensorList exp_avg_sqs,
                              at::TensorList max_exp_avg_sqs, double lr, double beta1,
                              double beta2, double eps, double weight_decay, double step,
                              bool amsgrad) {
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
}

}  // namespace lth_fast
