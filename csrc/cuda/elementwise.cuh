// Vector types for 16-byte accesses in the elementwise kernels, the compute type of each
// storage type (half types compute in float32 and round once when stored), and the one dtype
// switch the elementwise ops share.
#pragma once
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
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

// Calls fn(T{}) for the storage type T of `type` (float, double, Half or BFloat16); the
// argument checks have already refused every other dtype.
template <typename Fn>
void with_float_type(c10::ScalarType type, const char* op, Fn&& fn) {
  switch (type) {
    case c10::kFloat: return fn(float{});
    case c10::kDouble: return fn(double{});
    case c10::kHalf: return fn(c10::Half{});
    case c10::kBFloat16: return fn(c10::BFloat16{});
    default: TORCH_CHECK_TYPE(false, op, ": unsupported dtype ", type);
  }
}

}  // namespace lth_fast::cuda
