// AVX-512 (F+BW+VL+VBMI2) selection kernels. Only the functions marked LTH_AVX512 contain AVX-512
// instructions; they run only after cpu_supports(Isa::avx512) said yes.
#include <immintrin.h>

#include "cpu/simd/prefetch.h"
#include "cpu/simd/select_scalar.h"

#define LTH_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi2,avx2,popcnt,bmi")))

namespace lth_fast::simd {
// Named so the symbols of every function holding AVX512 code say so (tests read them).
namespace avx512_kernels {
namespace {

// 16 keys of 32 bits: float32 bits, or float16/bfloat16 bits widened.
LTH_AVX512 inline __m512i keys16(const uint32_t* w) {
  return _mm512_and_si512(_mm512_loadu_si512(w), _mm512_set1_epi32(0x7FFFFFFF));
}
LTH_AVX512 inline __m512i keys16(const uint16_t* w) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  return _mm512_and_si512(_mm512_cvtepu16_epi32(h), _mm512_set1_epi32(0x7FFF));
}
LTH_AVX512 inline __mmask16 alive16(const uint8_t* m) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(m));
  return _mm_test_epi8_mask(v, v);
}

template <typename Bits>
LTH_AVX512 void count_band32(const Bits* w, const uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                             int shift, int64_t* hist, uint64_t inf, BandCount* out) {
  // hi <= 2^31 for these dtypes, so hi - 1 and lo fit in 32 bits; the band test is inclusive.
  const __m512i vlo = _mm512_set1_epi32(static_cast<int>(lo));
  const __m512i vhi = _mm512_set1_epi32(static_cast<int>(hi - 1));
  const __m512i vinf = _mm512_set1_epi32(static_cast<int>(inf));
  const uint32_t lo32 = static_cast<uint32_t>(lo);
  int64_t alive = 0, below = 0, in_band = 0;
  portable::RunCounts counts(hist);
  __mmask16 nan = 0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i k = keys16(w + i);
    const __mmask16 a = alive16(m + i);
    nan |= _mm512_cmpgt_epu32_mask(k, vinf);
    const __mmask16 lt = _mm512_mask_cmplt_epu32_mask(a, k, vlo);
    __mmask16 band = _mm512_mask_cmple_epu32_mask(a & ~lt, k, vhi);
    alive += _mm_popcnt_u32(a);
    below += _mm_popcnt_u32(lt);
    if (band) {  // rare: only entries near the threshold
      alignas(64) uint32_t tmp[16];
      _mm512_store_si512(tmp, k);
      in_band += _mm_popcnt_u32(band);
      while (band) {
        counts.add((tmp[__builtin_ctz(band)] - lo32) >> shift);
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
LTH_AVX512 int64_t cut_below32(const Bits* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                               int64_t* idx, int64_t cap) {
  const __m512i vlo = _mm512_set1_epi32(static_cast<int>(lo));
  const __m512i vhi = _mm512_set1_epi32(static_cast<int>(hi - 1));
  const __m128i one = _mm_set1_epi8(1);
  int64_t found = 0, i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i k = keys16(w + i);
    const __mmask16 keep = _mm512_mask_cmpge_epu32_mask(alive16(m + i), k, vlo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(m + i), _mm_maskz_mov_epi8(keep, one));
    __mmask16 band = _mm512_mask_cmple_epu32_mask(keep, k, vhi);
    if (found >= cap) {  // nothing more to collect: count only (many ties)
      found += _mm_popcnt_u32(band);
      band = 0;
    }
    while (band) {
      if (found < cap) idx[found] = i + __builtin_ctz(band);
      ++found;
      band &= band - 1;
    }
  }
  const int64_t used = found < cap ? found : cap;
  return found + portable::cut_below(w + i, m + i, n - i, lo, hi, idx + used, cap - used, i);
}

// Marking pass, 64 entries a step: mask bytes become 0 / 1 / kMarkBelow / 2 + bucket, built
// as one 64-byte vector from four 16-key groups. The few band entries' mark bytes are
// compressed into a small buffer with one byte compress (VBMI2) and no branch, and counted
// into hist from there once it fills: a branch per step on "any band entry here" would
// mispredict about every other step.
constexpr int kBandBuffer = 1024;

template <typename Bits>
LTH_AVX512 inline void prefetch_ahead(const Bits* w, const uint8_t* m) {
  constexpr int64_t size = sizeof(Bits);
  for (int64_t line = 0; line < 64 * size; line += 64)
    prefetch_ahead_of(w, kPrefetchAhead * size + line);
  prefetch_ahead_of(m, kPrefetchAhead);
}

template <typename Bits>
LTH_AVX512 void mark32(const Bits* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi, int shift,
                       int64_t* hist, uint64_t inf, BandCount* out) {
  static_assert(kMarkBuckets + 2 == kMarkBelow, "below-band entries share the clamp value");
  // Per key: bucket = (key - lo) >> shift, arithmetic, so a key below lo is negative and an
  // unsigned min with 253 clamps it to 253 (+ 2 = kMarkBelow) without a compare of its own;
  // keys above the band are found by one compare. The four 16-key groups are packed into one
  // 64-byte vector (two packs and a dword transpose: few shuffle-port uops).
  const __m512i vlo = _mm512_set1_epi32(static_cast<int>(lo));
  const __m512i vhi = _mm512_set1_epi32(static_cast<int>(hi - 1));
  const __m128i vshift = _mm_cvtsi32_si128(shift);
  const __m512i clamp = _mm512_set1_epi32(kMarkBuckets);
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512i two = _mm512_set1_epi8(2), one = _mm512_set1_epi8(1);
  const __m512i below_mark = _mm512_set1_epi8(static_cast<char>(kMarkBelow));
  __m512i top = _mm512_setzero_si512();  // the largest key: NaN keys lie above inf's
  alignas(64) uint8_t buf[kBandBuffer + 64];
  int used = 0;
  portable::MarkCounts counts(hist);
  int64_t alive = 0, below = 0, in_band = 0, i = 0;
  const bool single = hi - lo == 1;  // a band of one key (ties): every band entry in bucket 0
  for (; i + 64 <= n; i += 64) {
    prefetch_ahead(w + i, m + i);
    const __m512i mv = _mm512_loadu_si512(m + i);
    const __mmask64 a = _mm512_test_epi8_mask(mv, mv);
    __m512i bucket[4];
    __mmask16 gt[4];
    for (int j = 0; j < 4; ++j) {
      const __m512i k = keys16(w + i + 16 * j);
      top = _mm512_max_epu32(top, k);
      gt[j] = _mm512_cmpgt_epu32_mask(k, vhi);
      bucket[j] = _mm512_min_epu32(_mm512_sra_epi32(_mm512_sub_epi32(k, vlo), vshift), clamp);
    }
    const __mmask64 above = _mm512_kunpackd(_mm512_kunpackw(gt[3], gt[2]),
                                            _mm512_kunpackw(gt[1], gt[0]));
    const __m512i bytes = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(
        _mm512_packus_epi32(bucket[0], bucket[1]), _mm512_packus_epi32(bucket[2], bucket[3])));
    __m512i v = _mm512_maskz_add_epi8(a, bytes, two);  // dead entries 0
    v = _mm512_mask_mov_epi8(v, a & above, one);
    _mm512_storeu_si512(m + i, v);
    const __mmask64 lt = _mm512_mask_cmpeq_epi8_mask(a, v, below_mark);
    const __mmask64 band = a & ~above & ~lt;
    alive += static_cast<int64_t>(_mm_popcnt_u64(a));
    below += static_cast<int64_t>(_mm_popcnt_u64(lt));
    if (single) {  // one bucket: its count is the band's; no buffer, no histogram chain
      in_band += static_cast<int64_t>(_mm_popcnt_u64(band));
      continue;
    }
    _mm512_storeu_si512(buf + used, _mm512_maskz_compress_epi8(band, v));
    used += static_cast<int>(_mm_popcnt_u64(band));
    if (used >= kBandBuffer) {
      counts.add(buf, used, 2);
      in_band += used;
      used = 0;
    }
  }
  counts.add(buf, used, 2);
  in_band += used;
  if (single) hist[0] += in_band;
  out->alive += alive;
  out->below += below;
  out->in_band += in_band;
  out->has_nan |= _mm512_cmpgt_epu32_mask(top, _mm512_set1_epi32(static_cast<int>(inf))) != 0;
  portable::mark(w + i, m + i, n - i, lo, hi, shift, hist, inf, out);
}

LTH_AVX512 int64_t resolve_avx512(uint8_t* m, int64_t n, int cut, uint8_t below_value,
                                  int64_t* idx, int64_t cap) {
  const __m512i one = _mm512_set1_epi8(1), below_mark = _mm512_set1_epi8(char(kMarkBelow));
  const __m512i keep_from = _mm512_set1_epi8(static_cast<char>(cut + 3));
  const __m512i pending_at = _mm512_set1_epi8(static_cast<char>(cut + 2));
  int64_t found = 0, i = 0;
  for (; i + 64 <= n; i += 64) {
    prefetch_ahead_of(m + i, kPrefetchAhead);
    const __m512i v = _mm512_loadu_si512(m + i);
    const __mmask64 is_below = _mm512_cmpeq_epi8_mask(v, below_mark);
    const __mmask64 keep = _mm512_cmpge_epu8_mask(v, keep_from) & ~is_below;
    __mmask64 pending = cut >= 0 ? _mm512_cmpeq_epi8_mask(v, pending_at) : 0;
    const __mmask64 out = _mm512_cmpeq_epi8_mask(v, one) | keep | pending |
                          (below_value ? is_below : 0);
    _mm512_storeu_si512(m + i, _mm512_maskz_mov_epi8(out, one));
    if (found >= cap) {  // nothing more to collect: count only (many ties)
      found += static_cast<int64_t>(_mm_popcnt_u64(pending));
      pending = 0;
    }
    while (pending) {
      if (found < cap) idx[found] = i + __builtin_ctzll(pending);
      ++found;
      pending &= pending - 1;
    }
  }
  const int64_t used = found < cap ? found : cap;
  return found + portable::resolve(m + i, n - i, cut, below_value, idx + used, cap - used, i);
}

LTH_AVX512 inline __m512i keys8(const uint64_t* w) {
  return _mm512_and_si512(_mm512_loadu_si512(w), _mm512_set1_epi64(0x7FFFFFFFFFFFFFFFll));
}
LTH_AVX512 inline __mmask8 alive8(const uint8_t* m) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(m));
  return static_cast<__mmask8>(_mm_test_epi8_mask(v, v));
}

LTH_AVX512 void count_band64(const uint64_t* w, const uint8_t* m, int64_t n, uint64_t lo,
                             uint64_t hi, int shift, int64_t* hist, uint64_t inf, BandCount* out) {
  const __m512i vlo = _mm512_set1_epi64(static_cast<long long>(lo));
  const __m512i vhi = _mm512_set1_epi64(static_cast<long long>(hi - 1));
  const __m512i vinf = _mm512_set1_epi64(static_cast<long long>(inf));
  int64_t alive = 0, below = 0, in_band = 0;
  __mmask8 nan = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i k = keys8(w + i);
    const __mmask8 a = alive8(m + i);
    nan |= _mm512_cmpgt_epu64_mask(k, vinf);
    const __mmask8 lt = _mm512_mask_cmplt_epu64_mask(a, k, vlo);
    __mmask8 band = _mm512_mask_cmple_epu64_mask(a & ~lt, k, vhi);
    alive += _mm_popcnt_u32(a);
    below += _mm_popcnt_u32(lt);
    if (band) {
      alignas(64) uint64_t tmp[8];
      _mm512_store_si512(tmp, k);
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

LTH_AVX512 int64_t cut_below64(const uint64_t* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                               int64_t* idx, int64_t cap) {
  const __m512i vlo = _mm512_set1_epi64(static_cast<long long>(lo));
  const __m512i vhi = _mm512_set1_epi64(static_cast<long long>(hi - 1));
  const __m128i one = _mm_set1_epi8(1);
  int64_t found = 0, i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512i k = keys8(w + i);
    const __mmask8 keep = _mm512_mask_cmpge_epu64_mask(alive8(m + i), k, vlo);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(m + i), _mm_maskz_mov_epi8(keep, one));
    __mmask8 band = _mm512_mask_cmple_epu64_mask(keep, k, vhi);
    if (found >= cap) {  // nothing more to collect: count only (many ties)
      found += _mm_popcnt_u32(band);
      band = 0;
    }
    while (band) {
      if (found < cap) idx[found] = i + __builtin_ctz(band);
      ++found;
      band &= band - 1;
    }
  }
  const int64_t used = found < cap ? found : cap;
  return found + portable::cut_below(w + i, m + i, n - i, lo, hi, idx + used, cap - used, i);
}

void count_band_avx512(DType t, const void* w, const uint8_t* m, int64_t n, uint64_t lo,
                       uint64_t hi, int shift, int64_t* hist, BandCount* out) {
  if (t == DType::f64)
    return count_band64(static_cast<const uint64_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
  if (t == DType::f32)
    return count_band32(static_cast<const uint32_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
  count_band32(static_cast<const uint16_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
}

int64_t cut_below_avx512(DType t, const void* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                         int64_t* idx, int64_t cap) {
  if (t == DType::f64) return cut_below64(static_cast<const uint64_t*>(w), m, n, lo, hi, idx, cap);
  if (t == DType::f32) return cut_below32(static_cast<const uint32_t*>(w), m, n, lo, hi, idx, cap);
  return cut_below32(static_cast<const uint16_t*>(w), m, n, lo, hi, idx, cap);
}

// float64 marks with the portable loop.
void mark_avx512(DType t, const void* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                 int shift, int64_t* hist, BandCount* out) {
  if (t == DType::f64)
    return portable::mark(static_cast<const uint64_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
  if (t == DType::f32)
    return mark32(static_cast<const uint32_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
  mark32(static_cast<const uint16_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
}

}  // namespace
}  // namespace avx512_kernels

extern const SelectKernels kSelectAvx512 = {avx512_kernels::count_band_avx512, avx512_kernels::cut_below_avx512, avx512_kernels::mark_avx512, avx512_kernels::resolve_avx512};

}  // namespace lth_fast::simd
