// CPU kernel of lth_fast::masked_sgd_: one fused pass over all tensors of the list.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cpu/dispatch.h"

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
  const int64_t esize = params[0].element_size();
  const simd::SgdParams s{lr, momentum, dampening, weight_decay, nesterov, maximize, init_buffers};
  std::vector<int64_t> sizes;
  for (const at::Tensor& p : params) sizes.push_back(p.numel());
  const bool with_buffers = momentum != 0;
  parallel_chunks(chunks_of(sizes), [&](const Chunk& c) {
    const int64_t off = c.start * esize;
    char* buf = with_buffers ? static_cast<char*>(momentum_buffers[c.run].data_ptr()) + off : nullptr;
    kern.masked_sgd(dtype, static_cast<char*>(params[c.run].data_ptr()) + off,
                    static_cast<const char*>(grads[c.run].const_data_ptr()) + off,
                    reinterpret_cast<const uint8_t*>(masks[c.run].const_data_ptr<bool>()) + c.start,
                    buf, c.len, s);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("masked_sgd_", &masked_sgd_cpu); }

}  // namespace lth_fast::cpu
