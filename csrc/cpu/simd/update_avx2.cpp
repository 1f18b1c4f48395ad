// AVX2 + FMA + F16C update kernels. Only functions in avx2_kernels hold AVX2 code; they run
// only after cpu_supports(Isa::avx2) said yes.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "cpu/simd/isa.h"
#include "cpu/simd/update_portable.h"

#define LTH_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace lth_fast::simd {
namespace avx2_kernels {
namespace {

using portable::BF16;
using portable::F16;

LTH_AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
LTH_AVX2 inline __m256 load8(const F16* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
LTH_AVX2 inline __m256 load8(const BF16* p) {
  const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}
LTH_AVX2 inline void store8(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
LTH_AVX2 inline void store8(F16* p, __m256 v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
LTH_AVX2 inline void store8(BF16* p, __m256 v) {  // round to nearest even; NaN stays NaN
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), lsb)), 16);
  const __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, qnan, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
LTH_AVX2 inline __m256 keep8(const uint8_t* m) {  // all-ones lanes where the mask is true
  const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m)));
  return _mm256_castsi256_ps(
      _mm256_xor_si256(_mm256_cmpeq_epi32(a, _mm256_setzero_si256()), _mm256_set1_epi32(-1)));
}

template <typename T, typename Form>
LTH_AVX2 void masked_sgd8_loop(T* p, const T* g, const uint8_t* m, T* buf, int64_t n,
                               const SgdParams& s) {
  const __m256 neg_lr = _mm256_set1_ps(static_cast<float>(-s.lr));
  const __m256 mom = _mm256_set1_ps(static_cast<float>(s.momentum));
  const __m256 damp1 = _mm256_set1_ps(static_cast<float>(1 - s.dampening));
  const __m256 wd = _mm256_set1_ps(static_cast<float>(s.weight_decay));
  const __m256 flip = _mm256_set1_ps(s.maximize ? -0.0f : 0.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 keep = keep8(m + i), w = load8(p + i);
    __m256 d = _mm256_xor_ps(load8(g + i), flip);
    if constexpr (Form::decay) d = _mm256_fmadd_ps(w, wd, d);
    if constexpr (Form::momentum) {
      __m256 b = d;
      if constexpr (!Form::init) b = _mm256_fmadd_ps(d, damp1, _mm256_mul_ps(load8(buf + i), mom));
      store8(buf + i, _mm256_and_ps(b, keep));
      d = Form::nesterov ? _mm256_fmadd_ps(b, mom, d) : b;
    }
    store8(p + i, _mm256_and_ps(_mm256_fmadd_ps(d, neg_lr, w), keep));
  }
}

template <typename T>
LTH_AVX2 void masked_sgd8(T* p, const T* g, const uint8_t* m, T* buf, int64_t n,
                          const SgdParams& s) {
  const int64_t body = n & ~int64_t{7};
  portable::with_sgd_form(s, [&](auto form) {
    masked_sgd8_loop<T, decltype(form)>(p, g, m, buf, body, s);
  });
  portable::masked_sgd(p + body, g + body, m + body, buf ? buf + body : nullptr, n - body, s);
}

// The portable loop's arithmetic, 8 lanes at a time (the same roundings: see update.h), with
// the step's form fixed at compile time.
template <typename T, typename Form>
LTH_AVX2 void masked_adam8_loop(T* p, const T* g, const uint8_t* m, T* m1, T* m2, T* vmax,
                                int64_t n, const AdamParams& s) {
  const portable::Lerp<float> lerp(1 - s.beta1);
  const __m256 lw = _mm256_set1_ps(lerp.small ? lerp.w : lerp.w_minus_1);
  const __m256 b2 = _mm256_set1_ps(static_cast<float>(s.beta2));
  const __m256 c2 = _mm256_set1_ps(static_cast<float>(1 - s.beta2));
  const __m256 wd = _mm256_set1_ps(static_cast<float>(s.weight_decay));
  const __m256 decay = _mm256_set1_ps(static_cast<float>(s.decay));
  const __m256 eps = _mm256_set1_ps(static_cast<float>(s.eps));
  const __m256 bc2s = _mm256_set1_ps(static_cast<float>(s.bias_correction2_sqrt));
  const __m256 nss = _mm256_set1_ps(static_cast<float>(s.neg_step_size));
  const __m256 flip = _mm256_set1_ps(s.maximize ? -0.0f : 0.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 keep = keep8(m + i);
    const __m256 a0 = load8(m1 + i);
    __m256 w = load8(p + i);
    __m256 d = _mm256_xor_ps(load8(g + i), flip);
    if constexpr (Form::decoupled) w = _mm256_mul_ps(w, decay);
    else if constexpr (Form::decay) d = _mm256_fmadd_ps(w, wd, d);
    const __m256 a = _mm256_fmadd_ps(lw, _mm256_sub_ps(d, a0), lerp.small ? a0 : d);
    const __m256 v = _mm256_fmadd_ps(_mm256_mul_ps(c2, d), d, _mm256_mul_ps(load8(m2 + i), b2));
    __m256 second = v;
    if constexpr (Form::amsgrad) {  // torch.maximum: NaN from either side
      const __m256 old = load8(vmax + i);
      __m256 mx = _mm256_max_ps(old, v);  // v where either is NaN
      mx = _mm256_blendv_ps(mx, old, _mm256_cmp_ps(old, old, _CMP_UNORD_Q));
      second = mx;
      store8(vmax + i, _mm256_and_ps(mx, keep));
    }
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(second), bc2s), eps);
    const __m256 np = _mm256_add_ps(w, _mm256_div_ps(_mm256_mul_ps(nss, a), denom));
    store8(m1 + i, _mm256_and_ps(a, keep));
    store8(m2 + i, _mm256_and_ps(v, keep));
    store8(p + i, _mm256_and_ps(np, keep));
  }
}

template <typename T>
LTH_AVX2 void masked_adam8(T* p, const T* g, const uint8_t* m, T* m1, T* m2, T* vmax, int64_t n,
                           const AdamParams& s) {
  const int64_t body = n & ~int64_t{7};
  portable::with_adam_form(s, [&](auto form) {
    masked_adam8_loop<T, decltype(form)>(p, g, m, m1, m2, vmax, body, s);
  });
  portable::masked_adam(p + body, g + body, m + body, m1 + body, m2 + body,
                        vmax ? vmax + body : nullptr, n - body, s);
}

// Masked copy with streaming stores once p is 32-byte aligned: the old weights are never read,
// so skipping the write-allocate leaves 9 bytes a float32 parameter.
template <int Size, bool Stream>
LTH_AVX2 void rewind_bytes(char* p, const char* snap, const uint8_t* m, int64_t n) {
  constexpr int kStep = 32 / Size;
  int64_t i = 0;
  auto scalar = [&](int64_t e) {
    for (; i < e; ++i) {
      if (m[i]) __builtin_memcpy(p + i * Size, snap + i * Size, Size);
      else __builtin_memset(p + i * Size, 0, Size);
    }
  };
  const int64_t head = (32 - (reinterpret_cast<uintptr_t>(p) & 31)) % 32;
  if (head % Size != 0) return scalar(n);  // misaligned elements: no streaming
  scalar(std::min<int64_t>(n, head / Size));
  for (; i + kStep <= n; i += kStep) {
    __m256i a;
    if constexpr (Size == 4) a = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m + i)));
    else if constexpr (Size == 2) a = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(m + i)));
    else {
      int32_t b;  // 4 mask bytes at any alignment
      __builtin_memcpy(&b, m + i, 4);
      a = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(b));
    }
    const __m256i dead = Size == 4 ? _mm256_cmpeq_epi32(a, _mm256_setzero_si256())
                       : Size == 2 ? _mm256_cmpeq_epi16(a, _mm256_setzero_si256())
                                   : _mm256_cmpeq_epi64(a, _mm256_setzero_si256());
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(snap + i * Size));
    const __m256i out = _mm256_andnot_si256(dead, v);
    if constexpr (Stream) _mm256_stream_si256(reinterpret_cast<__m256i*>(p + i * Size), out);
    else _mm256_store_si256(reinterpret_cast<__m256i*>(p + i * Size), out);
  }
  if constexpr (Stream) _mm_sfence();
  scalar(n);
}

void masked_sgd_avx2(DType t, void* p, const void* g, const uint8_t* m, void* buf, int64_t n,
                     const SgdParams& s) {
  switch (t) {
    case DType::f32:
      return masked_sgd8(static_cast<float*>(p), static_cast<const float*>(g), m,
                         static_cast<float*>(buf), n, s);
    case DType::f16:
      return masked_sgd8(static_cast<F16*>(p), static_cast<const F16*>(g), m,
                         static_cast<F16*>(buf), n, s);
    case DType::bf16:
      return masked_sgd8(static_cast<BF16*>(p), static_cast<const BF16*>(g), m,
                         static_cast<BF16*>(buf), n, s);
    case DType::f64:  // float64 keeps the portable loop
      return portable::masked_sgd(static_cast<double*>(p), static_cast<const double*>(g), m,
                                  static_cast<double*>(buf), n, s);
  }
}

void masked_adam_avx2(DType t, void* p, const void* g, const uint8_t* m, void* m1, void* m2,
                      void* vmax, int64_t n, const AdamParams& s) {
  portable::with_type(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if constexpr (std::is_same_v<T, double>)  // float64 keeps the portable loop
      portable::masked_adam(static_cast<T*>(p), static_cast<const T*>(g), m, static_cast<T*>(m1),
                            static_cast<T*>(m2), static_cast<T*>(vmax), n, s);
    else
      masked_adam8(static_cast<T*>(p), static_cast<const T*>(g), m, static_cast<T*>(m1),
                   static_cast<T*>(m2), static_cast<T*>(vmax), n, s);
  });
}

void rewind_avx2(DType t, void* p, const void* snap, const uint8_t* m, int64_t n, bool stream) {
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
}  // namespace avx2_kernels

extern const UpdateKernels kUpdateAvx2 = {avx2_kernels::masked_sgd_avx2, avx2_kernels::rewind_avx2,
                                          avx2_kernels::masked_adam_avx2};

}  // namespace lth_fast::simd
