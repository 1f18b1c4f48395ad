// CUDA kernel of lth_fast::rewind_: params = snapshot where masks else 0, one pass over every
// tensor (multi_tensor_apply.cuh), capturable in a CUDA graph. params is only written, so the
// in-place form rewind_(params, params, masks) reads each element before it writes it.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/op_checks.h"
#include "cuda/elementwise.cuh"
#include "cuda/multi_tensor_apply.cuh"

namespace lth_fast::cuda {
namespace {

// Lists: 0 params, 1 snapshot, 2 masks.
template <typename Storage>
struct RewindStep {
  using T = Storage;
  static constexpr int kLists = 3, kMask = 2;
  static constexpr unsigned kReads = 0b110u, kWrites = 0b001u;

  __device__ __forceinline__ void operator()(T& p, const T& snapshot, uint8_t alive) const {
    p = alive ? snapshot : T(0);
  }
};

void rewind_cuda(at::TensorList params, at::TensorList snapshot, at::TensorList masks) {
  check_rewind(params, snapshot, masks);
  if (params.empty()) return;
  const c10::cuda::CUDAGuard guard(params[0].device());
  const at::TensorList lists[3] = {params, snapshot, masks};
  with_float_type(params[0].scalar_type(), "rewind_", [&](auto tag) {
    apply_elementwise(lists, RewindStep<decltype(tag)>{});
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CUDA, m) { m.impl("rewind_", &rewind_cuda); }

}  // namespace lth_fast::cuda
