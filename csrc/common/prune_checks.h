// Checks on the arguments of lth_fast::prune_, shared by the device files so that every device
// raises the same errors.
#pragma once
#include <c10/util/ArrayRef.h>
#include <c10/util/Exception.h>

#include "common/tensor_list.h"

#include <cstddef>
#include <cstdint>

namespace lth_fast {

// Exactly one of fractions/counts is given: one value, or with `layerwise` one per tensor (n);
// fractions lie in [0, 1], counts are non-negative.
inline void check_amounts(c10::ArrayRef<double> fractions, c10::ArrayRef<int64_t> counts,
                          bool layerwise, size_t n) {
  TORCH_CHECK_VALUE(fractions.empty() != counts.empty(),
                    "prune_: give exactly one of fractions and counts");
  const size_t given = fractions.empty() ? counts.size() : fractions.size();
  TORCH_CHECK_VALUE(given == 1 || (layerwise && given == n), "prune_: ",
                    layerwise ? "layerwise amounts must be one value or one per tensor ("
                              : "a global ranking takes one amount (",
                    n, " tensors), got ", given);
  for (size_t i = 0; i < fractions.size(); ++i)
    TORCH_CHECK_VALUE(fractions[i] >= 0.0 && fractions[i] <= 1.0, "prune_: amount[", i,
                      "] = ", fractions[i], " is not a fraction in [0, 1]");
  for (size_t i = 0; i < counts.size(); ++i)
    TORCH_CHECK_VALUE(counts[i] >= 0, "prune_: amount[", i, "] = ", counts[i],
                      " is a negative count");
}

// Everything prune_ checks before it reads a weight: the two lists and the amounts.
inline void check_prune(at::TensorList weights, at::TensorList masks,
                        c10::ArrayRef<double> fractions, c10::ArrayRef<int64_t> counts,
                        bool layerwise) {
  check_float_list("prune_", "weights", weights, common_device(weights));
  check_like("prune_", "masks", masks, "weights", weights, at::kBool);
  check_amounts(fractions, counts, layerwise, weights.size());
}

}  // namespace lth_fast
