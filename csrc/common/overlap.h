// The memory rule of every op (docs/semantics.md, "Errors and aliasing"): a tensor an op writes
// shares no byte with any other tensor of the call, except a read-only tensor that is exactly
// it (the same bytes, dtype and index): an elementwise kernel reads each element before it
// writes it, so rewind_(params, params, masks) and a gradient that is its own param are safe.
// Checked on storage ranges, not only on equal data pointers.
#pragma once
#include <ATen/core/Tensor.h>

#include <initializer_list>

namespace lth_fast {

struct NamedList {
  const char* name;
  at::TensorList tensors;
  bool written;
};

// Raises ValueError "<op>: <list>[i] and <list>[j] overlap in memory" for the overlapping pair
// first in position order (list order, then index), the earlier position first. The lists'
// tensors are contiguous and on one device.
void check_no_overlap(const char* op, std::initializer_list<NamedList> lists);

}  // namespace lth_fast
