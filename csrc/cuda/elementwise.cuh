// Vector types for 16-byte accesses in the elementwise kernels (and for single elements, as
// packs of one), the compute type of each storage type (half types compute in float32 and
// round once when stored), and the one dtype switch the elementwise ops share.
#pragma once
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <cstdint>

namespace lth_fast::cuda {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

// N consecutive elements of E, moved as one access of N * sizeof(E) bytes.
template <typename E, int N>
struct alignas(sizeof(E) * N) Pack {
  static constexpr int kSize = N;
  E v[N];
};

template <typename T>
using Vec16 = Pack<T, 16 / sizeof(T)>;  // 16 bytes of T

template <int N>
using MaskVec = Pack<uint8_t, N>;  // the N bool mask bytes that go with one Vec16

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
