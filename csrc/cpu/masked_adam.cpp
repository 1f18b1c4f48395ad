// CPU kernel of lth_fast::masked_adam_: one fused pass over all tensors of the list, reading
// p, g, mask, exp_avg, exp_avg_sq and writing p, exp_avg, exp_avg_sq.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cpu/dispatch.h"

namespace lth_fast::cpu {
namespace {

void masked_adam_cpu(at::TensorList params, at::TensorList grads, at::TensorList masks,
                     at::TensorList exp_avgs, at::TensorList exp_avg_sqs, double lr, double beta1,
                     double beta2, double eps, double weight_decay, double step, bool maximize) {
  check_masked_adam(params, grads, masks, exp_avgs, exp_avg_sqs, lr, beta1, beta2, eps,
                    weight_decay, step);
  if (params.empty()) return;
  const simd::UpdateKernels& kern = update_kernels();
  const simd::DType dtype = simd_dtype(params[0].scalar_type());
  const int64_t esize = params[0].element_size();
  const simd::AdamParams s =
      simd::make_adam_params(lr, beta1, beta2, eps, weight_decay, step, maximize);
  std::vector<int64_t> sizes;
  for (const at::Tensor& p : params) sizes.push_back(p.numel());
  parallel_chunks(chunks_of(sizes), [&](const Chunk& c) {
    const int64_t off = c.start * esize;
    auto ptr = [&](at::TensorList l) { return static_cast<char*>(l[c.run].data_ptr()) + off; };
    const char* g = static_cast<const char*>(grads[c.run].const_data_ptr()) + off;
    const auto* m = reinterpret_cast<const uint8_t*>(masks[c.run].const_data_ptr<bool>());
    kern.masked_adam(dtype, ptr(params), g, m + c.start, ptr(exp_avgs), ptr(exp_avg_sqs), c.len,
                     s);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("masked_adam_", &masked_adam_cpu); }

}  // namespace lth_fast::cpu
