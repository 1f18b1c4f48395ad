// CPU kernel of lth_fast::rewind_: params = snapshot where mask else 0, one fused pass.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace lth_fast::cpu {
namespace {

constexpr int64_t kStreamBytes = int64_t{32} << 20;

void rewind_cpu(at::TensorList params, at::TensorList snapshot, at::TensorList masks) {
  check_rewind(params, snapshot, masks);
  if (params.empty()) return;
  const simd::UpdateKernels& kern = update_kernels();
  const simd::DType dtype = simd_dtype(params[0].scalar_type());
  int64_t bytes = 0;
  bool in_place = false;
  for (size_t i = 0; i < params.size(); ++i) {
    bytes += params[i].numel() * params[i].element_size();
    in_place |= params[i].const_data_ptr() == snapshot[i].const_data_ptr();
  }
  // Streaming stores pay off only when the list is far larger than the caches; an in-place
  // rewind (Pruner.apply after each step) works on weights the next step reads again.
  const bool stream = !in_place && bytes >= kStreamBytes;
  for_each_chunk(params, [&](int64_t t, int64_t start, int64_t len) {
    kern.rewind(dtype, element_ptr(params, t, start), const_element_ptr(snapshot, t, start),
                reinterpret_cast<const uint8_t*>(const_element_ptr(masks, t, start)), len, stream);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("rewind_", &rewind_cpu); }

}  // namespace lth_fast::cpu
