// Vector types for 16-byte accesses in the elementwise kernels, and the compute type of each
// storage type (half types compute in float32 and round once when stored).
#pragma once
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>

namespace lth_fast::cuda {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

template <typename T>
struct alignas(16) Vec16 {  // 16 bytes of T
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};

template <int N>
struct alignas(N) MaskVec {  // the N bool mask bytes that go with one Vec16
  uint8_t v[N];
};

}  // namespace lth_fast::cuda
