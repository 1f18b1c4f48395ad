// Portable loops for the update kernels (the scalar ISA, and the SIMD ISAs' tails), with the
// half-type conversions they share. Compiled with the base flags.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu/simd/update.h"

namespace lth_fast::simd::portable {

struct F16 { uint16_t bits; };   // IEEE binary16 storage
struct BF16 { uint16_t bits; };  // bfloat16 storage

inline float to_float(float x) { return x; }
inline double to_float(double x) { return x; }
inline float to_float(BF16 x) {
  const uint32_t u = uint32_t(x.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float to_float(F16 x) {
  const uint32_t sign = uint32_t(x.bits & 0x8000) << 16;
  const int exp = (x.bits >> 10) & 0x1F, frac = x.bits & 0x3FF;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(frac), -24);
  } else if (exp == 31) {
    f = frac ? NAN : INFINITY;
  } else {
    f = std::ldexp(1.0f + frac / 1024.0f, exp - 15);
  }
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u |= sign;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as torch's conversions do.
inline void store(float* p, float v) { *p = v; }
inline void store(double* p, double v) { *p = v; }
inline void store(BF16* p, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if (std::isnan(v)) {
    p->bits = static_cast<uint16_t>((u >> 16) | 0x40);
    return;
  }
  p->bits = static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
inline void store(F16* p, float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const float a = std::fabs(v);
  if (std::isnan(v)) { p->bits = sign | 0x7E00; return; }
  if (a >= 65520.0f) { p->bits = sign | 0x7C00; return; }  // rounds to inf
  if (a < 6.103515625e-05f) {                                // denormal: units of 2^-24
    p->bits = sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f));
    return;
  }
  int e;
  const float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  uint32_t frac = static_cast<uint32_t>(std::nearbyint((m * 2.0f - 1.0f) * 1024.0f));
  int exp = e - 1 + 15;
  if (frac == 1024) { frac = 0; ++exp; }
  p->bits = sign | static_cast<uint16_t>(exp << 10) | static_cast<uint16_t>(frac);
}

template <typename T>
void masked_sgd(T* p, const T* g, const uint8_t* m, T* buf, int64_t n, const SgdParams& s) {
  using Acc = decltype(to_float(T{}));
  for (int64_t i = 0; i < n; ++i) {
    if (!m[i]) {
      store(p + i, Acc(0));
      if (s.momentum != 0) store(buf + i, Acc(0));
      continue;
    }
    const Acc w = to_float(p[i]);
    Acc d = to_float(g[i]);
    if (s.maximize) d = -d;
    if (s.weight_decay != 0) d = std::fma(w, Acc(s.weight_decay), d);
    if (s.momentum != 0) {
      const Acc b = s.init_buffers
                        ? d : std::fma(d, Acc(1 - s.dampening), to_float(buf[i]) * Acc(s.momentum));
      store(buf + i, b);
      d = s.nesterov ? std::fma(b, Acc(s.momentum), d) : b;
    }
    store(p + i, std::fma(d, Acc(-s.lr), w));
  }
}

// The branches of one SGD step, fixed at compile time so that a vector loop carries none (with
// them read from SgdParams, each iteration reloaded and tested the flags: the stores through
// vector types may alias them).
template <bool Decay, bool Momentum, bool Init, bool Nesterov>
struct SgdForm {
  static constexpr bool decay = Decay, momentum = Momentum, init = Init, nesterov = Nesterov;
};

// Calls f(SgdForm<...>{}) with the form `s` asks for (maximize is left to the loop: it is a
// sign flip, free as an xor with -0.0 or +0.0).
template <typename F>
void with_sgd_form(const SgdParams& s, F&& f) {
  auto pick = [&](auto decay) {
    constexpr bool D = decltype(decay)::value;
    if (s.momentum == 0) return f(SgdForm<D, false, false, false>{});
    if (s.init_buffers)
      return s.nesterov ? f(SgdForm<D, true, true, true>{}) : f(SgdForm<D, true, true, false>{});
    return s.nesterov ? f(SgdForm<D, true, false, true>{}) : f(SgdForm<D, true, false, false>{});
  };
  if (s.weight_decay != 0) {
    pick(std::true_type{});
  } else {
    pick(std::false_type{});
  }
}

// torch's lerp(a, b, w): a + w*(b-a) for |w| < 0.5, else b - (1-w)*(b-a), both as one FMA.
template <typename Acc>
struct Lerp {
  Acc w, w_minus_1;
  bool small;
  explicit Lerp(double weight)
      : w(Acc(weight)), w_minus_1(Acc(weight) - Acc(1)), small(std::fabs(Acc(weight)) < Acc(0.5)) {}
  Acc operator()(Acc a, Acc b) const {
    return small ? std::fma(w, b - a, a) : std::fma(w_minus_1, b - a, b);
  }
};

// The branches of one Adam step, fixed at compile time as for SGD (maximize stays a sign flip).
template <bool Decay, bool Decoupled, bool Amsgrad>
struct AdamForm {
  static constexpr bool decay = Decay, decoupled = Decoupled, amsgrad = Amsgrad;
};

template <typename F>
void with_adam_form(const AdamParams& s, F&& f) {
  auto pick = [&](auto amsgrad) {
    constexpr bool A = decltype(amsgrad)::value;
    if (s.weight_decay == 0) return f(AdamForm<false, false, A>{});
    return s.decoupled ? f(AdamForm<true, true, A>{}) : f(AdamForm<true, false, A>{});
  };
  if (s.amsgrad) {
    pick(std::true_type{});
  } else {
    pick(std::false_type{});
  }
}

// torch.maximum(old, v): NaN when either is.
template <typename Acc>
inline Acc nan_max(Acc old, Acc v) {
  return (std::isnan(old) || old > v) ? old : v;
}

template <typename T>
void masked_adam(T* p, const T* g, const uint8_t* m, T* m1, T* m2, T* vmax, int64_t n,
                 const AdamParams& s) {
  using Acc = decltype(to_float(T{}));
  const Lerp<Acc> lerp(1 - s.beta1);
  const Acc b2 = Acc(s.beta2), c2 = Acc(1 - s.beta2), wd = Acc(s.weight_decay);
  const Acc eps = Acc(s.eps), bc2s = Acc(s.bias_correction2_sqrt), nss = Acc(s.neg_step_size);
  const Acc decay = Acc(s.decay);
  for (int64_t i = 0; i < n; ++i) {
    if (!m[i]) {
      store(p + i, Acc(0));
      store(m1 + i, Acc(0));
      store(m2 + i, Acc(0));
      if (s.amsgrad) store(vmax + i, Acc(0));
      continue;
    }
    Acc w = to_float(p[i]);
    Acc d = to_float(g[i]);
    if (s.maximize) d = -d;
    if (s.weight_decay != 0) {
      if (s.decoupled) w = w * decay;
      else d = std::fma(w, wd, d);
    }
    const Acc a = lerp(to_float(m1[i]), d);
    const Acc v = std::fma(c2 * d, d, to_float(m2[i]) * b2);
    Acc second = v;
    if (s.amsgrad) {
      second = nan_max(to_float(vmax[i]), v);
      store(vmax + i, second);
    }
    const Acc denom = std::sqrt(second) / bc2s + eps;
    store(m1 + i, a);
    store(m2 + i, v);
    store(p + i, w + nss * a / denom);
  }
}

template <typename T>
void rewind(T* p, const T* snap, const uint8_t* m, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = m[i] ? snap[i] : T{};
}

template <typename F>
void with_type(DType t, F&& f) {
  switch (t) {
    case DType::f32: return f(static_cast<float*>(nullptr));
    case DType::f64: return f(static_cast<double*>(nullptr));
    case DType::f16: return f(static_cast<F16*>(nullptr));
    case DType::bf16: return f(static_cast<BF16*>(nullptr));
  }
}

}  // namespace lth_fast::simd::portable
