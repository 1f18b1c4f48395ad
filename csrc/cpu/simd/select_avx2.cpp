// AVX2 selection kernels. Only the functions marked LTH_AVX2 contain AVX2 instructions; they run
// only after cpu_supports(Isa::avx2) said yes. Keys are below 2^31 (2^63 for float64), so the
// signed compares of AVX2 order them correctly.
#include <immintrin.h>

#include <array>
#include <cstring>

#include "cpu/simd/prefetch.h"
#include "cpu/simd/select_scalar.h"

#define LTH_AVX2 __attribute__((target("avx2,popcnt,bmi")))

namespace lth_fast::simd {
// Named so the symbols of every function holding AVX2 code say so (tests read them).
namespace avx2_kernels {
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

// kCompress[b]: a pshufb control that moves the bytes selected by the bits of b (of 8) to the
// front, in order: how the marking pass appends band entries to its buffer without a branch.
constexpr std::array<uint64_t, 256> make_compress() {
  std::array<uint64_t, 256> t{};
  for (int b = 0; b < 256; ++b) {
    int out = 0;
    for (int i = 0; i < 8; ++i)
      if (b >> i & 1) t[b] |= uint64_t(i) << (8 * out++);
    for (; out < 8; ++out) t[b] |= uint64_t(0x80) << (8 * out);  // zero the rest
  }
  return t;
}
constexpr std::array<uint64_t, 256> kCompress = make_compress();

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

LTH_AVX2 inline __m256i alive01(const uint8_t* m) {  // 8 mask bytes as int32 lanes of 0/1
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(m)));
}
LTH_AVX2 inline int64_t hsum_epi32(__m256i v) {
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
  int64_t s = 0;
  for (int j = 0; j < 8; ++j) s += t[j];
  return s;
}

// 32 entries a step with vector counters; the histogram is touched only in the steps where
// some entry falls in the band (a few percent of entries at most).
template <typename Bits>
LTH_AVX2 void count_band32(const Bits* w, const uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                           int shift, int64_t* hist, uint64_t inf, BandCount* out) {
  const __m256i vlo = _mm256_set1_epi32(static_cast<int>(lo));
  const __m256i vhi = _mm256_set1_epi32(static_cast<int>(hi - 1));
  const __m256i vinf = _mm256_set1_epi32(static_cast<int>(inf));
  const __m256i zero = _mm256_setzero_si256();
  const uint32_t lo32 = static_cast<uint32_t>(lo);
  portable::RunCounts counts(hist);
  __m256i alive = zero, below = zero, nan = zero;
  int64_t below_total = 0, in_band = 0, i = 0, steps = 0;
  for (; i + 32 <= n; i += 32) {
    alive = _mm256_add_epi64(alive, _mm256_sad_epu8(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + i)), zero));
    __m256i band[4], any = zero;
    for (int j = 0; j < 4; ++j) {
      const __m256i k = keys8(w + i + 8 * j), a = alive01(m + i + 8 * j);
      const __m256i lt = _mm256_cmpgt_epi32(vlo, k), gt = _mm256_cmpgt_epi32(k, vhi);
      below = _mm256_add_epi32(below, _mm256_and_si256(lt, a));
      band[j] = _mm256_andnot_si256(_mm256_or_si256(lt, gt), a);  // 0/1 lanes
      any = _mm256_or_si256(any, band[j]);
      nan = _mm256_or_si256(nan, _mm256_cmpgt_epi32(k, vinf));
    }
    if (!_mm256_testz_si256(any, any)) {
      for (int j = 0; j < 4; ++j) {
        unsigned bits = bits8(_mm256_slli_epi32(band[j], 31));
        if (!bits) continue;
        alignas(32) uint32_t tmp[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), keys8(w + i + 8 * j));
        in_band += _mm_popcnt_u32(bits);
        while (bits) {
          counts.add((tmp[__builtin_ctz(bits)] - lo32) >> shift);
          bits &= bits - 1;
        }
      }
    }
    if (++steps == (1 << 20)) {  // int32 lanes: flush long before they could overflow
      below_total += hsum_epi32(below);
      below = zero;
      steps = 0;
    }
  }
  alignas(32) int64_t a64[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(a64), alive);
  out->alive += a64[0] + a64[1] + a64[2] + a64[3];
  out->below += below_total + hsum_epi32(below);
  out->in_band += in_band;
  out->has_nan |= !_mm256_testz_si256(nan, nan);
  portable::count_band(w + i, m + i, n - i, lo, hi, shift, hist, inf, out);
}

// 32 entries a step: four int32 0/1 vectors packed to 32 mask bytes and stored at once.
template <typename Bits>
LTH_AVX2 int64_t cut_below32(const Bits* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                             int64_t* idx, int64_t cap) {
  const __m256i vlo = _mm256_set1_epi32(static_cast<int>(lo));
  const __m256i vhi = _mm256_set1_epi32(static_cast<int>(hi - 1));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t found = 0, i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i keep[4], band[4], any = zero;
    for (int j = 0; j < 4; ++j) {
      const __m256i k = keys8(w + i + 8 * j);
      keep[j] = _mm256_andnot_si256(_mm256_cmpgt_epi32(vlo, k), alive01(m + i + 8 * j));
      band[j] = _mm256_andnot_si256(_mm256_cmpgt_epi32(k, vhi), keep[j]);
      any = _mm256_or_si256(any, band[j]);
    }
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(keep[0], keep[1]),
                                             _mm256_packs_epi32(keep[2], keep[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(m + i),
                        _mm256_permutevar8x32_epi32(bytes, order));
    if (!_mm256_testz_si256(any, any)) {
      for (int j = 0; j < 4; ++j) {
        unsigned bits = bits8(_mm256_slli_epi32(band[j], 31));
        if (found >= cap) {  // nothing more to collect: count only (many ties)
          found += _mm_popcnt_u32(bits);
          bits = 0;
        }
        while (bits) {
          if (found < cap) idx[found] = i + 8 * j + __builtin_ctz(bits);
          ++found;
          bits &= bits - 1;
        }
      }
    }
  }
  const int64_t used = found < cap ? found : cap;
  return found + portable::cut_below(w + i, m + i, n - i, lo, hi, idx + used, cap - used, i);
}

// Marking pass, 32 entries a step: mask bytes become 0 / 1 / kMarkBelow / 2 + bucket. The
// bucket is (key - lo) >> shift with an arithmetic shift, clamped to 253 by an unsigned min, so
// keys below lo (negative differences) land on 253 + 2 == kMarkBelow with no compare of their
// own; band entries are found on the packed bytes, and appended to a small buffer with a
// shuffle (no branch: one on "any band entry here" would mispredict often), counted into hist
// from there once it fills.
template <typename Bits>
LTH_AVX2 void mark32(const Bits* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi, int shift,
                     int64_t* hist, uint64_t inf, BandCount* out) {
  static_assert(kMarkBuckets + 2 == kMarkBelow, "below-band entries share the clamp value");
  const __m256i vlo = _mm256_set1_epi32(static_cast<int>(lo));
  const __m256i vhi = _mm256_set1_epi32(static_cast<int>(hi - 1));
  const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
  const __m256i two = _mm256_set1_epi32(2), clamp = _mm256_set1_epi32(kMarkBuckets);
  const __m256i below_mark = _mm256_set1_epi32(kMarkBelow);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i two8 = _mm256_set1_epi8(2);
  const __m256i below8 = _mm256_set1_epi8(static_cast<char>(kMarkBelow));
  const __m128i vshift = _mm_cvtsi32_si128(shift);
  __m256i alive = zero, below = zero, top = zero;
  int64_t below_total = 0, in_band = 0, i = 0, steps = 0;
  constexpr int kBandBuffer = 1024;
  const bool single = hi - lo == 1;  // a band of one key (ties): every band entry in bucket 0
  alignas(32) uint8_t buf[kBandBuffer + 32];  // band entries' mask bytes, counted when full
  int used = 0;
  portable::MarkCounts counts(hist);
  for (; i + 32 <= n; i += 32) {
    for (int64_t line = 0; line < 32 * static_cast<int64_t>(sizeof(Bits)); line += 64)
      prefetch_ahead_of(w + i, kPrefetchAhead * static_cast<int64_t>(sizeof(Bits)) + line);
    prefetch_ahead_of(m + i, kPrefetchAhead);
    alive = _mm256_add_epi64(alive, _mm256_sad_epu8(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + i)), zero));
    __m256i val[4];
    for (int j = 0; j < 4; ++j) {
      const __m256i k = keys8(w + i + 8 * j), a = alive01(m + i + 8 * j);
      __m256i v = _mm256_sra_epi32(_mm256_sub_epi32(k, vlo), vshift);
      v = _mm256_add_epi32(_mm256_min_epu32(v, clamp), two);
      v = _mm256_blendv_epi8(v, one, _mm256_cmpgt_epi32(k, vhi));
      val[j] = _mm256_andnot_si256(_mm256_cmpeq_epi32(a, zero), v);
      below = _mm256_sub_epi32(below, _mm256_cmpeq_epi32(val[j], below_mark));
      top = _mm256_max_epu32(top, k);
    }
    const __m256i bytes = _mm256_permutevar8x32_epi32(
        _mm256_packus_epi16(_mm256_packus_epi32(val[0], val[1]),
                            _mm256_packus_epi32(val[2], val[3])), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(m + i), bytes);
    // Band bytes: 2 <= v (max(v, 2) == v) and v != kMarkBelow, appended to buf 8 at a time.
    const __m256i band = _mm256_andnot_si256(
        _mm256_cmpeq_epi8(bytes, below8), _mm256_cmpeq_epi8(_mm256_max_epu8(bytes, two8), bytes));
    const uint32_t bits = static_cast<uint32_t>(_mm256_movemask_epi8(band));
    if (single) {  // one bucket: its count is the band's; no buffer, no histogram chain
      in_band += _mm_popcnt_u32(bits);
    } else {
      for (int j = 0; j < 4; ++j) {
        const unsigned b8 = (bits >> (8 * j)) & 0xFF;
        const __m128i eight = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(m + i + 8 * j));
        const __m128i ctrl = _mm_cvtsi64_si128(static_cast<long long>(kCompress[b8]));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(buf + used), _mm_shuffle_epi8(eight, ctrl));
        used += _mm_popcnt_u32(b8);
      }
    }
    if (used >= kBandBuffer) {
      counts.add(buf, used, 2);
      in_band += used;
      used = 0;
    }
    if (++steps == (1 << 20)) {
      below_total += hsum_epi32(below);
      below = zero;
      steps = 0;
    }
  }
  counts.add(buf, used, 2);
  in_band += used;
  if (single) hist[0] += in_band;
  alignas(32) uint32_t t32[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t32), top);
  bool nan = false;
  for (int j = 0; j < 8; ++j) nan |= t32[j] > inf;
  alignas(32) int64_t a64[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(a64), alive);
  out->alive += a64[0] + a64[1] + a64[2] + a64[3];
  out->below += below_total + hsum_epi32(below);
  out->in_band += in_band;
  out->has_nan |= nan;
  portable::mark(w + i, m + i, n - i, lo, hi, shift, hist, inf, out);
}

LTH_AVX2 int64_t resolve_avx2(uint8_t* m, int64_t n, int cut, uint8_t below_value, int64_t* idx,
                              int64_t cap) {
  const __m256i one = _mm256_set1_epi8(1), below_mark = _mm256_set1_epi8(char(kMarkBelow));
  const __m256i keep_from = _mm256_set1_epi8(static_cast<char>(cut + 3));  // buckets > cut
  const __m256i pending_at = _mm256_set1_epi8(static_cast<char>(cut + 2));
  const __m256i below_to = below_value ? below_mark : _mm256_setzero_si256();
  int64_t found = 0, i = 0;
  for (; i + 32 <= n; i += 32) {
    prefetch_ahead_of(m + i, kPrefetchAhead);
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + i));
    const __m256i is_below = _mm256_cmpeq_epi8(v, below_mark);
    const __m256i keep = _mm256_andnot_si256(
        is_below, _mm256_cmpeq_epi8(_mm256_max_epu8(v, keep_from), v));  // 1 <= v, v >= cut+3
    const __m256i pending = cut >= 0 ? _mm256_cmpeq_epi8(v, pending_at) : _mm256_setzero_si256();
    __m256i out = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, one), keep),
                                  _mm256_or_si256(pending, _mm256_and_si256(is_below, below_to)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(m + i), _mm256_and_si256(out, one));
    unsigned bits = static_cast<unsigned>(_mm256_movemask_epi8(pending));
    if (found >= cap) {  // nothing more to collect: count only (many ties)
      found += _mm_popcnt_u32(bits);
      bits = 0;
    }
    while (bits) {
      if (found < cap) idx[found] = i + __builtin_ctz(bits);
      ++found;
      bits &= bits - 1;
    }
  }
  const int64_t used = found < cap ? found : cap;
  return found + portable::resolve(m + i, n - i, cut, below_value, idx + used, cap - used, i);
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

// float64 marks with the portable loop: its 4-lane vectors gain little over it.
void mark_avx2(DType t, const void* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi, int shift,
               int64_t* hist, BandCount* out) {
  if (t == DType::f64)
    return portable::mark(static_cast<const uint64_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
  if (t == DType::f32)
    return mark32(static_cast<const uint32_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
  mark32(static_cast<const uint16_t*>(w), m, n, lo, hi, shift, hist, inf_key(t), out);
}

}  // namespace
}  // namespace avx2_kernels

extern const SelectKernels kSelectAvx2 = {avx2_kernels::count_band_avx2, avx2_kernels::cut_below_avx2, avx2_kernels::mark_avx2, avx2_kernels::resolve_avx2};

}  // namespace lth_fast::simd
