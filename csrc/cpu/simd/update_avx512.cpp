// AVX-512 (F+BW+VL) update kernels. Only functions in avx512_kernels hold AVX-512 code; they
// run only after cpu_supports(Isa::avx512) said yes.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "cpu/simd/isa.h"
#include "cpu/simd/update_portable.h"

#define LTH_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

namespace lth_fast::simd {
namespace avx512_kernels {
namespace {

using portable::BF16;
using portable::F16;

LTH_AVX512 inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
LTH_AVX512 inline __m512 load16(const F16* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
LTH_AVX512 inline __m512 load16(const BF16* p) {
  const __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
}
LTH_AVX512 inline void store16(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
LTH_AVX512 inline void store16(F16* p, __m512 v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
LTH_AVX512 inline void store16(BF16* p, __m512 v) {  // round to nearest even; NaN stays NaN
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb)), 16);
  const __m512i qnan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), qnan);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(r));
}
LTH_AVX512 inline __mmask16 keep16(const uint8_t* m) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(m));
  return _mm_test_epi8_mask(v, v);
}

template <typename T, typename Form>
LTH_AVX512 void masked_sgd16_loop(T* p, const T* g, const uint8_t* m, T* buf, int64_t n,
                                  const SgdParams& s) {
  const __m512 neg_lr = _mm512_set1_ps(static_cast<float>(-s.lr));
  const __m512 mom = _mm512_set1_ps(static_cast<float>(s.momentum));
  const __m512 damp1 = _mm512_set1_ps(static_cast<float>(1 - s.dampening));
  const __m512 wd = _mm512_set1_ps(static_cast<float>(s.weight_decay));
  const __m512i flip = _mm512_set1_epi32(s.maximize ? INT32_MIN : 0);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 keep = keep16(m + i);
    const __m512 w = load16(p + i);
    __m512 d = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(load16(g + i)), flip));
    if constexpr (Form::decay) d = _mm512_fmadd_ps(w, wd, d);
    if constexpr (Form::momentum) {
      __m512 b = d;
      if constexpr (!Form::init) b = _mm512_fmadd_ps(d, damp1, _mm512_mul_ps(load16(buf + i), mom));
      store16(buf + i, _mm512_maskz_mov_ps(keep, b));
      d = Form::nesterov ? _mm512_fmadd_ps(b, mom, d) : b;
    }
    store16(p + i, _mm512_maskz_mov_ps(keep, _mm512_fmadd_ps(d, neg_lr, w)));
  }
}

template <typename T>
LTH_AVX512 void masked_sgd16(T* p, const T* g, const uint8_t* m, T* buf, int64_t n,
                             const SgdParams& s) {
  const int64_t body = n & ~int64_t{15};
  portable::with_sgd_form(s, [&](auto form) {
    masked_sgd16_loop<T, decltype(form)>(p, g, m, buf, body, s);
  });
  portable::masked_sgd(p + body, g + body, m + body, buf ? buf + body : nullptr, n - body, s);
}

// The portable loop's arithmetic, 16 lanes at a time (the same roundings: see update.h), with
// the step's form fixed at compile time.
template <typename T, typename Form>
LTH_AVX512 void masked_adam16_loop(T* p, const T* g, const uint8_t* m, T* m1, T* m2, T* vmax,
                                int64_t n, const AdamParams& s) {
  const portable::Lerp<float> lerp(1 - s.beta1);
  const __m512 lw = _mm512_set1_ps(lerp.small ? lerp.w : lerp.w_minus_1);
  const __m512 b2 = _mm512_set1_ps(static_cast<float>(s.beta2));
  const __m512 c2 = _mm512_set1_ps(static_cast<float>(1 - s.beta2));
  const __m512 wd = _mm512_set1_ps(static_cast<float>(s.weight_decay));
  const __m512 decay = _mm512_set1_ps(static_cast<float>(s.decay));
  const __m512 eps = _mm512_set1_ps(static_cast<float>(s.eps));
  const __m512 bc2s = _mm512_set1_ps(static_cast<float>(s.bias_correction2_sqrt));
  const __m512 nss = _mm512_set1_ps(static_cast<float>(s.neg_step_size));
  const __m512i flip = _mm512_set1_epi32(s.maximize ? INT32_MIN : 0);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 keep = keep16(m + i);
    const __m512 a0 = load16(m1 + i);
    __m512 w = load16(p + i);
    __m512 d = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(load16(g + i)), flip));
    if constexpr (Form::decoupled) w = _mm512_mul_ps(w, decay);
    else if constexpr (Form::decay) d = _mm512_fmadd_ps(w, wd, d);
    const __m512 a = _mm512_fmadd_ps(lw, _mm512_sub_ps(d, a0), lerp.small ? a0 : d);
    const __m512 v = _mm512_fmadd_ps(_mm512_mul_ps(c2, d), d, _mm512_mul_ps(load16(m2 + i), b2));
    __m512 second = v;
    if constexpr (Form::amsgrad) {  // torch.maximum: NaN from either side
      const __m512 old = load16(vmax + i);
      __m512 mx = _mm512_max_ps(old, v);  // v where either is NaN
      mx = _mm512_mask_mov_ps(mx, _mm512_cmp_ps_mask(old, old, _CMP_UNORD_Q), old);
      second = mx;
      store16(vmax + i, _mm512_maskz_mov_ps(keep, mx));
    }
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(second), bc2s), eps);
    const __m512 np = _mm512_add_ps(w, _mm512_div_ps(_mm512_mul_ps(nss, a), denom));
    store16(m1 + i, _mm512_maskz_mov_ps(keep, a));
    store16(m2 + i, _mm512_maskz_mov_ps(keep, v));
    store16(p + i, _mm512_maskz_mov_ps(keep, np));
  }
}

template <typename T>
LTH_AVX512 void masked_adam16(T* p, const T* g, const uint8_t* m, T* m1, T* m2, T* vmax, int64_t n,
                           const AdamParams& s) {
  const int64_t body = n & ~int64_t{15};
  portable::with_adam_form(s, [&](auto form) {
    masked_adam16_loop<T, decltype(form)>(p, g, m, m1, m2, vmax, body, s);
  });
  portable::masked_adam(p + body, g + body, m + body, m1 + body, m2 + body,
                        vmax ? vmax + body : nullptr, n - body, s);
}

// Masked copy with streaming stores once p is 64-byte aligned (see update_avx2.cpp).
template <int Size, bool Stream>
LTH_AVX512 void rewind_bytes(char* p, const char* snap, const uint8_t* m, int64_t n) {
  constexpr int kStep = 64 / Size;
  int64_t i = 0;
  auto scalar = [&](int64_t e) {
    for (; i < e; ++i) {
      if (m[i]) __builtin_memcpy(p + i * Size, snap + i * Size, Size);
      else __builtin_memset(p + i * Size, 0, Size);
    }
  };
  const int64_t head = (64 - (reinterpret_cast<uintptr_t>(p) & 63)) % 64;
  if (head % Size != 0) return scalar(n);
  scalar(std::min<int64_t>(n, head / Size));
  for (; i + kStep <= n; i += kStep) {
    __m512i v;
    if constexpr (Size == 4) {
      v = _mm512_maskz_loadu_epi32(keep16(m + i), snap + i * Size);
    } else if constexpr (Size == 2) {
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + i));
      v = _mm512_maskz_loadu_epi16(_mm256_test_epi8_mask(b, b), snap + i * Size);
    } else {
      const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(m + i));
      v = _mm512_maskz_loadu_epi64(static_cast<__mmask8>(_mm_test_epi8_mask(b, b)), snap + i * Size);
    }
    if constexpr (Stream) _mm512_stream_si512(reinterpret_cast<__m512i*>(p + i * Size), v);
    else _mm512_store_si512(reinterpret_cast<__m512i*>(p + i * Size), v);
  }
  if constexpr (Stream) _mm_sfence();
  scalar(n);
}

void masked_sgd_avx512(DType t, void* p, const void* g, const uint8_t* m, void* buf, int64_t n,
                       const SgdParams& s) {
  switch (t) {
    case DType::f32:
      return masked_sgd16(static_cast<float*>(p), static_cast<const float*>(g), m,
                          static_cast<float*>(buf), n, s);
    case DType::f16:
      return masked_sgd16(static_cast<F16*>(p), static_cast<const F16*>(g), m,
                          static_cast<F16*>(buf), n, s);
    case DType::bf16:
      return masked_sgd16(static_cast<BF16*>(p), static_cast<const BF16*>(g), m,
                          static_cast<BF16*>(buf), n, s);
    case DType::f64:
      return portable::masked_sgd(static_cast<double*>(p), static_cast<const double*>(g), m,
                                  static_cast<double*>(buf), n, s);
  }
}

void masked_adam_avx512(DType t, void* p, const void* g, const uint8_t* m, void* m1, void* m2,
                        void* vmax, int64_t n, const AdamParams& s) {
  portable::with_type(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if constexpr (std::is_same_v<T, double>)  // float64 keeps the portable loop
      portable::masked_adam(static_cast<T*>(p), static_cast<const T*>(g), m, static_cast<T*>(m1),
                            static_cast<T*>(m2), static_cast<T*>(vmax), n, s);
    else
      masked_adam16(static_cast<T*>(p), static_cast<const T*>(g), m, static_cast<T*>(m1),
                   static_cast<T*>(m2), static_cast<T*>(vmax), n, s);
  });
}

void rewind_avx512(DType t, void* p, const void* snap, const uint8_t* m, int64_t n, bool stream) {
  char* dst = static_cast<char*>(p);
  const char* src = static_cast<const char*>(snap);
  if (stream) {
    if (t == DType::f32) return rewind_bytes<4, true>(dst, src, m, n);
    if (t == DType::f64) return rewind_bytes<8, true>(dst, src, m, n);
    return rewind_bytes<2, true>(dst, src, m, n);
  }
  if (t == DType::f32) return rewind_bytes<4, false>(dst, src, m, n);
  if (t == DType::f64) return rewind_bytes<8, false>(dst, src, m, n);
  rewind_bytes<2, false>(dst, src, m, n);
}

}  // namespace
}  // namespace avx512_kernels

extern const UpdateKernels kUpdateAvx512 = {avx512_kernels::masked_sgd_avx512,
                                            avx512_kernels::rewind_avx512,
                                            avx512_kernels::masked_adam_avx512};

}  // namespace lth_fast::simd
