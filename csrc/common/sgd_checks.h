// Checks of masked_sgd_'s arguments, shared by every device: the lists (common/tensor_list.h)
// and torch.optim.SGD's own rules on the hyperparameters.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "common/tensor_list.h"

namespace lth_fast {

inline void check_masked_sgd(at::TensorList params, at::TensorList grads, at::TensorList masks,
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
}

}  // namespace lth_fast
