// CPU kernel of lth_fast::masked_adam_: one fused pass over all tensors of the list, reading
// p, g, mask, exp_avg, exp_avg_sq (and max_exp_avg_sq with amsgrad) and writing them but g and
// the mask.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace lth_fast::cpu {
namespace {

void masked_adam_cpu(at::TensorList params, at::TensorList grads, at::TensorList masks,
                     at::TensorList exp_avgs, at::TensorList exp_avg_sqs,
                     at::TensorList max_exp_avg_sqs, double lr, double beta1, double beta2,
                     double eps, double weight_decay, double step, bool amsgrad, bool maximize,
                     bool decoupled_weight_decay) {
  check_masked_adam(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, beta1,
                    beta2, eps, weight_decay, step, amsgrad);
  if (params.empty()) return;
  const simd::UpdateKernels& kern = update_kernels();
  const simd::DType dtype = simd_dtype(params[0].scalar_type());
  const simd::AdamParams s =
      simd::make_adam_params(lr, beta1, beta2, eps, weight_decay, step, maximize, amsgrad,
                             decoupled_weight_decay);
  for_each_chunk(params, [&](int64_t t, int64_t start, int64_t len) {
    kern.masked_adam(dtype, element_ptr(params, t, start), const_element_ptr(grads, t, start),
                     reinterpret_cast<const uint8_t*>(const_element_ptr(masks, t, start)),
                     element_ptr(exp_avgs, t, start), element_ptr(exp_avg_sqs, t, start),
                     amsgrad ? element_ptr(max_exp_avg_sqs, t, start) : nullptr, len, s);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("masked_adam_", &masked_adam_cpu); }

}  // namespace lth_fast::cpu
