// AVX2 selection kernels. Only the functions marked LTH_AVX2 contain AVX2 instructions; they run
// only after cpu_supports(Isa::avx2) said yes. Keys are below 2^31 (2^63 for float64), so the
// signed compares of AVX2 order them correctly.
#include <immintrin.h>

#include <array>
#include <cstring>

#include "cpu/simd/select_scalar.h"

#define LTH_AVX2 __attribute__((target("avx2,popcnt,bmi")))

namespace lth_fast::simd {
namespace {

// Byte i of kBytes[b] is bit i of b: turns a movemask result into 8 bool bytes.
constexpr std::array<uint64_t, 256> make_bytes() {
  std::array<uint64_t, 256> t{};
  for (int b = 0; b < 256; ++b)
    for (int i = 0; i < 8; ++i)
      if (b >> i & 1) t[b] |= uint64_t(1) << (8 * i);
  return t;
}
constexpr std::array<uint64_t, 256> kBytes = make_bytes();

LTH_AVX2 inline __m256i keys8(const uint32_t* w) {
  return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)),
                          _mm256_set1_epi32(0x7FFFFFFF));
}
LTH_AVX2 inline __m256i keys8(const uint16_t* w) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  return _mm256_and_si256(_mm256_cvtepu16_epi32(h), _mm256_set1_epi32(0x7FFF));
}
LTH_AVX2 inline unsigned bits8(__m256i v) {
  return static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(v)));
}
LTH_AVX2 inline unsigned alive8(const uint8_t* m) {
  const __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m)));
  return ~bits8(_mm256_cmpeq_epi32(a, _mm256_setzero_si256())) & 0xFFu;
}

template <typename Bits>
LTH_AVX2 void count_band32(const Bits* w, const uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                           int shift, int64_t* hist, uint64_t inf, BandCount* out) {
  const __m256i vlo = _mm256_set1_epi32(static_cast<int>(lo));
  const __m256i vhi = _mm256_set1_epi32(static_cast<int>(hi - 1));
  const __m256i vinf = _mm256_set1_epi32(static_cast<int>(inf));
  const uint32_t lo32 = static_cast<uint32_t>(lo);
  int64_t alive = 0, below = 0, in_band = 0;
  unsigned nan = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i k = keys8(w + i);
    const unsigned a = alive8(m + i);
    nan |= bits8(_mm256_cmpgt_epi32(k, vinf));
    const unsigned lt = a & bits8(_mm256_cmpgt_epi32(vlo, k));
    unsigned band = a & ~lt & ~bits8(_mm256_cmpgt_epi32(k, vhi));
    alive += _mm_popcnt_u32(a);
    below += _mm_popcnt_u32(lt);
    if (band) {
      alignas(32) uint32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), k);
      in_band += _mm_popcnt_u32(band);
      while (band) {
        ++hist[(tmp[__builtin_ctz(band)] - lo32) >> shift];
        band &= band - 1;
      }
    }
  }
  out->alive += alive;
  out->below += below;
  out->in_band += in_band;
  out->has_nan |= nan != 0;
  portable::count_band(w + i, m + i, n - i, lo, hi, shift, hist, inf, out);
}

template <typename Bits>
LTH_AVX2 int64_t cut_below32(const Bits* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                             int64_t* idx, int64_t cap) {
  const __m256i vlo = _mm256_set1_epi32(static_cast<int>(lo));
  const __m256i vhi = _mm256_set1_epi32(static_cast<int>(hi - 1));
  int64_t found = 0, i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i k = keys8(w + i);
    const unsigned keep = alive8(m + i) & ~bits8(_mm256_cmpgt_epi32(vlo, k)) & 0xFFu;
    std::memcpy(m + i, &kBytes[keep], 8);
    unsigned band = keep & ~bits8(_mm256_cmpgt_epi32(k, vhi));
    while (band) {
      if (found < cap) idx[found] = i + __builtin_ctz(band);
      ++found;
      band &= band - 1;
    }
  }
  const int64_t used = found < cap ? found : cap;
  return found + portable::cut_below(w + i, m + i, n - i, lo, hi, idx + used, cap - used, i);
}

LTH_AVX2 inline __m256i keys4(const uint64_t* w) {
  return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)),
                          _mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFll));
}
LTH_AVX2 inline unsigned bits4(__m256i v) {
  return static_cast<unsigned>(_mm256_movemask_pd(_mm256_castsi256_pd(v)));
}
LTH_AVX2 inline unsigned alive4(const uint8_t* m) {
  int32_t b;
  std::memcpy(&b, m, 4);
  const __m256i a = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(b));
  return ~bits4(_mm256_cmpeq_epi64(a, _mm256_setzero_si256())) & 0xFu;
}

LTH_AVX2 void count_band64(const uint64_t* w, const uint8_t* m, int64_t n, uint64_t lo,
                           uint64_t hi, int shift, int64_t* hist, uint64_t inf, BandCount* out) {
  const __m256i vlo = _mm256_set1_epi64x(static_cast<long long>(lo));
  const __m256i vhi = _mm256_set1_epi64x(static_cast<long long>(hi - 1));
  const __m256i vinf = _mm256_set1_epi64x(static_cast<long long>(inf));
  int64_t alive = 0, below = 0, in_band = 0;
  unsigned nan = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256i k = keys4(w + i);
    const unsigned a = alive4(m + i);
    nan |= bits4(_mm256_cmpgt_epi64(k, vinf));
    const unsigned lt = a & bits4(_mm256_cmpgt_epi64(vlo, k));
    unsigned band = a & ~lt & ~bits4(_mm256_cmpgt_epi64(k, vhi));
    alive += _mm_popcnt_u32(a);
    below += _mm_popcnt_u32(lt);
    if (band) {
      alignas(32) uint64_t tmp[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), k);
      in_band += _mm_popcnt_u32(band);
      while (band) {
        ++hist[(tmp[__builtin_ctz(band)] - lo) >> shift];
        band &= band - 1;
      }
    }
  }
  out->alive += alive;
  out->below += below;
  out->in_band += in_band;
  out->has_nan |= nan != 0;
  portable::count_band(w + i, m + i, n - i, lo, hi, shift, hist, inf, out);
}

LTH_AVX2 int64_t cut_below64(const uint64_t* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                             int64_t* idx, int64_t cap) {
  const __m256i vlo = _mm256_set1_epi64x(static_cast<long long>(lo));
  const __m256i vhi = _mm256_set1_epi64x(static_cast<long long>(hi - 1));
  int64_t found = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256i k = keys4(w + i);
    const unsigned keep = alive4(m + i) & ~bits4(_mm256_cmpgt_epi64(vlo, k)) & 0xFu;
    std::memcpy(m + i, &kBytes[keep], 4);
    unsigned band = keep & ~bits4(_mm256_cmpgt_epi64(k, vhi));
    while (band) {
      if (found < cap) idx[found] = i + __builtin_ctz(band);
      ++found;
      band &= band - 1;
    }
  }
  const int64_t used = found < cap ? found : cap;
  return found + portable::cut_below(w + i, m + i, n - i, lo, hi, idx + used, cap - used, i);
}

void count_band_avx2(DType t, const void* w, const uint8_t* m, int64_t n, uint64_t lo,
                     uint64_t hi, int shift, int64_t* hist, BandCount* out) {
  if (t == DType::f64)
    return count_band64(static_cast<const uint64_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
  if (t == DType::f32)
    return count_band32(static_cast<const uint32_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
  count_band32(static_cast<const uint16_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
}

int64_t cut_below_avx2(DType t, const void* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                       int64_t* idx, int64_t cap) {
  if (t == DType::f64) return cut_below64(static_cast<const uint64_t*>(w), m, n, lo, hi, idx, cap);
  if (t == DType::f32) return cut_below32(static_cast<const uint32_t*>(w), m, n, lo, hi, idx, cap);
  return cut_below32(static_cast<const uint16_t*>(w), m, n, lo, hi, idx, cap);
}

}  // namespace

extern const SelectKernels kSelectAvx2 = {count_band_avx2, cut_below_avx2};

}  // namespace lth_fast::simd
