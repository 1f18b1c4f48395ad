// Checks on lists of tensors, shared by every op and device. Each message names the op, the
// list and the index, and raises TypeError (dtype) or ValueError (everything else) in Python.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

namespace lth_fast {

// `list` holds floating tensors (float32/float16/bfloat16/float64) of one dtype, contiguous,
// all on `device`.
void check_float_list(const char* op, const char* list, at::TensorList tensors,
                      const c10::Device& device);

// `list` has as many tensors as `ref_list`, each of the same shape, on the same device, and
// contiguous; its dtype is `dtype` when given, else that of `ref_list`.
void check_like(const char* op, const char* list, at::TensorList tensors, const char* ref_list,
                at::TensorList ref, std::optional<at::ScalarType> dtype);

// The device every tensor of an op must be on: that of the first tensor of the first list
// that has one (CPU when all are empty).
c10::Device common_device(at::TensorList first);

// The lists every masked update op takes: params (float, one dtype, contiguous, one device),
// grads like params, masks like params but torch.bool.
void check_update_lists(const char* op, at::TensorList params, at::TensorList grads,
                        at::TensorList masks);

}  // namespace lth_fast
