// CPU kernel of lth_fast::masked_sgd_: one fused pass over all tensors of the list.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace lth_fast::cpu {
namespace {

void masked_sgd_cpu(at::TensorList params, at::TensorList grads, at::TensorList masks,
                    at::TensorList momentum_buffers, double lr, double momentum, double dampening,
                    double weight_decay, bool nesterov, bool maximize, bool init_buffers) {
  check_masked_sgd(params, grads, masks, momentum_buffers, lr, momentum, dampening, weight_decay,
                   nesterov);
  if (params.empty()) return;
  const simd::UpdateKernels& kern = update_kernels();
  const simd::DType dtype = simd_dtype(params[0].scalar_type());
  const simd::SgdParams s{lr, momentum, dampening, weight_decay, nesterov, maximize, init_buffers};
  const bool with_buffers = momentum != 0;  // else momentum_buffers is empty
  for_each_chunk(params, [&](int64_t t, int64_t start, int64_t len) {
    char* buf = with_buffers ? element_ptr(momentum_buffers, t, start) : nullptr;
    kern.masked_sgd(dtype, element_ptr(params, t, start), const_element_ptr(grads, t, start),
                    reinterpret_cast<const uint8_t*>(const_element_ptr(masks, t, start)), buf,
                    len, s);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("masked_sgd_", &masked_sgd_cpu); }

}  // namespace lth_fast::cpu
