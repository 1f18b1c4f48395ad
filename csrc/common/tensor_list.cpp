#include "common/tensor_list.h"

#include <c10/util/Exception.h>

namespace lth_fast {

namespace {
bool is_supported_float(at::ScalarType t) {
  return t == at::kFloat || t == at::kHalf || t == at::kBFloat16 || t == at::kDouble;
}
}  // namespace

c10::Device common_device(at::TensorList first) {
  return first.empty() ? c10::Device(c10::kCPU) : first[0].device();
}

void check_float_list(const char* op, const char* list, at::TensorList tensors,
                      const c10::Device& device) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    TORCH_CHECK_VALUE(t.defined(), op, ": ", list, "[", i, "] is undefined");
    TORCH_CHECK_TYPE(is_supported_float(t.scalar_type()), op, ": ", list, "[", i,
                     "] must be float32, float16, bfloat16 or float64, got ", t.scalar_type());
    TORCH_CHECK_TYPE(t.scalar_type() == tensors[0].scalar_type(), op, ": ", list, "[", i,
                     "] has dtype ", t.scalar_type(), " but ", list, "[0] has ",
                     tensors[0].scalar_type(), "; one list holds one dtype");
    TORCH_CHECK_VALUE(t.device() == device, op, ": ", list, "[", i, "] is on ", t.device(),
                      ", expected ", device);
    TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", list, "[", i, "] must be contiguous");
  }
}

void check_like(const char* op, const char* list, at::TensorList tensors, const char* ref_list,
                at::TensorList ref, std::optional<at::ScalarType> dtype) {
  TORCH_CHECK_VALUE(tensors.size() == ref.size(), op, ": ", list, " has ", tensors.size(),
                    " tensors but ", ref_list, " has ", ref.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    TORCH_CHECK_VALUE(t.defined(), op, ": ", list, "[", i, "] is undefined");
    const at::ScalarType want = dtype.value_or(ref[i].scalar_type());
    TORCH_CHECK_TYPE(t.scalar_type() == want, op, ": ", list, "[", i, "] must be ", want,
                     ", got ", t.scalar_type());
    TORCH_CHECK_VALUE(t.sizes() == ref[i].sizes(), op, ": ", list, "[", i, "] has shape ",
                      t.sizes(), " but ", ref_list, "[", i, "] has shape ", ref[i].sizes());
    TORCH_CHECK_VALUE(t.device() == ref[i].device(), op, ": ", list, "[", i, "] is on ",
                      t.device(), " but ", ref_list, "[", i, "] is on ", ref[i].device());
    TORCH_CHECK_VALUE(t.is_contiguous(), op, ": ", list, "[", i, "] must be contiguous");
  }
}

void check_update_lists(const char* op, at::TensorList params, at::TensorList grads,
                        at::TensorList masks) {
  check_float_list(op, "params", params, common_device(params));
  check_like(op, "grads", grads, "params", params, std::nullopt);
  check_like(op, "masks", masks, "params", params, at::kBool);
}

}  // namespace lth_fast
