#include <cmath>
#include <cstring>
#include <type_traits>

#include "cpu/simd/isa.h"
#include "cpu/simd/select_scalar.h"

namespace lth_fast::simd {

uint64_t key_at(DType t, const void* w, int64_t i) {
  return portable::with_bits(t, w, [i](auto* bits) -> uint64_t {
    using Bits = std::remove_cv_t<std::remove_pointer_t<decltype(bits)>>;
    return bits[i] & portable::abs_mask<Bits>();
  });
}

double key_to_double(DType t, uint64_t key) {
  switch (t) {
    case DType::f32: {
      const uint32_t b = static_cast<uint32_t>(key);
      float f;
      std::memcpy(&f, &b, sizeof f);
      return f;
    }
    case DType::f64: {
      double d;
      std::memcpy(&d, &key, sizeof d);
      return d;
    }
    case DType::bf16: {  // bfloat16 is the top half of a float32
      const uint32_t b = static_cast<uint32_t>(key) << 16;
      float f;
      std::memcpy(&f, &b, sizeof f);
      return f;
    }
    case DType::f16: {
      const int exp = static_cast<int>((key >> 10) & 0x1F), frac = static_cast<int>(key & 0x3FF);
      if (exp == 0) return std::ldexp(static_cast<double>(frac), -24);  // denormal
      if (exp == 31) return frac ? std::nan("") : INFINITY;
      return std::ldexp(1.0 + frac / 1024.0, exp - 15);
    }
  }
  return 0.0;
}

namespace {

void count_band_scalar(DType t, const void* w, const uint8_t* m, int64_t n, uint64_t lo,
                       uint64_t hi, int shift, int64_t* hist, BandCount* out) {
  portable::with_bits(t, w, [&](auto* bits) {
    portable::count_band(bits, m, n, lo, hi, shift, hist, inf_key(t), out);
  });
}

int64_t cut_below_scalar(DType t, const void* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                         int64_t* idx, int64_t cap) {
  return portable::with_bits(t, w, [&](auto* bits) {
    return portable::cut_below(bits, m, n, lo, hi, idx, cap, 0);
  });
}

void mark_scalar(DType t, const void* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                 int shift, int64_t* hist, BandCount* out) {
  portable::with_bits(t, w, [&](auto* bits) {
    portable::mark(bits, m, n, lo, hi, shift, hist, inf_key(t), out);
  });
}

int64_t resolve_scalar(uint8_t* m, int64_t n, int cut, uint8_t below_value, int64_t* idx,
                       int64_t cap) {
  return portable::resolve(m, n, cut, below_value, idx, cap, 0);
}

}  // namespace

extern const SelectKernels kSelectScalar = {count_band_scalar, cut_below_scalar, mark_scalar,
                                            resolve_scalar};

}  // namespace lth_fast::simd
