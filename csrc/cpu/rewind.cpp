// CPU kernel of lth_fast::rewind_: params = snapshot where mask else 0, one fused pass.
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cpu/dispatch.h"

namespace lth_fast::cpu {
namespace {

constexpr int64_t kStreamBytes = int64_t{32} << 20;

void rewind_cpu(at::TensorList params, at::TensorList snapshot, at::TensorList masks) {
  check_rewind(params, snapshot, masks);
  if (params.empty()) return;
  const simd::UpdateKernels& kern = update_kernels();
  const simd::DType dtype = simd_dtype(params[0].scalar_type());
  const int64_t esize = params[0].element_size();
  std::vector<int64_t> sizes;
  int64_t bytes = 0;
  bool in_place = false;
  for (size_t i = 0; i < params.size(); ++i) {
    sizes.push_back(params[i].numel());
    bytes += params[i].numel() * esize;
    in_place |= params[i].const_data_ptr() == snapshot[i].const_data_ptr();
  }
  // Streaming stores pay off only when the list is far larger than the caches; an in-place
  // rewind (Pruner.apply after each step) works on weights the next step reads again.
  const bool stream = !in_place && bytes >= kStreamBytes;
  parallel_chunks(chunks_of(sizes), [&](const Chunk& c) {
    const int64_t off = c.start * esize;
    kern.rewind(dtype, static_cast<char*>(params[c.run].data_ptr()) + off,
                static_cast<const char*>(snapshot[c.run].const_data_ptr()) + off,
                reinterpret_cast<const uint8_t*>(masks[c.run].const_data_ptr<bool>()) + c.start,
                c.len, stream);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("rewind_", &rewind_cpu); }

}  // namespace lth_fast::cpu
