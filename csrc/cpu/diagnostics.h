// Checks on the build itself, for the tests; csrc/ops.cpp declares them as ops.
#pragma once
#include <cstdint>

namespace lth_fast::cpu {

// How many distinct threads an at::parallel_for of this library runs on: 1 means the library
// was built without the parallel backend torch uses (e.g. OpenMP flags missing).
int64_t parallel_threads();

}  // namespace lth_fast::cpu
