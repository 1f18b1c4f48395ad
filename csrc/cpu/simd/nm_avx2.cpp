// AVX2 N:M kernels. Only the functions marked LTH_AVX2 contain AVX2 instructions; they run only
// after cpu_supports(Isa::avx2) said yes.
//
// The vector loop is that of nm_avx512.cpp on 8 keys (two groups of 4) a vector: m == 4,
// contiguous groups, 32- or 16-bit weights. Each lane is compared with its three rotations
// inside its group (rotation r pairs lane i with lane (i + r) % 4, earlier when i % 4 >= 4 - r);
// dead lanes get key -1, below every alive key, so the signed compares of AVX2 order them.
#include <immintrin.h>

#include "cpu/simd/nm_portable.h"

#define LTH_AVX2 __attribute__((target("avx2,popcnt")))

namespace lth_fast::simd {
// Named so the symbols of every function holding AVX2 code say so (tests read them).
namespace avx2_kernels {
namespace {

LTH_AVX2 inline __m256i keys8(const uint32_t* w) {
  return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)),
                          _mm256_set1_epi32(0x7FFFFFFF));
}
LTH_AVX2 inline __m256i keys8(const uint16_t* w) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  return _mm256_and_si256(_mm256_cvtepu16_epi32(h), _mm256_set1_epi32(0x7FFF));
}

// The count of every lane beaten by its partner `other` goes up by one (compare results are
// -1, so it is subtracted); `earlier` is all-ones on the lanes whose partner comes first.
LTH_AVX2 inline __m256i count_beaten(__m256i count, __m256i key, __m256i other,
                                     __m256i earlier) {
  const __m256i beaten = _mm256_or_si256(
      _mm256_cmpgt_epi32(other, key), _mm256_and_si256(_mm256_cmpeq_epi32(other, key), earlier));
  return _mm256_sub_epi32(count, beaten);
}

template <typename Bits>
LTH_AVX2 void keep_n_of_4(const Bits* w, uint8_t* mask, int64_t groups, int n, NmCounts* out) {
  const int64_t len = groups * 4;
  const __m256i ones = _mm256_set1_epi32(-1), limit = _mm256_set1_epi32(n);
  const __m256i earlier1 = _mm256_setr_epi32(0, 0, 0, -1, 0, 0, 0, -1);
  const __m256i earlier2 = _mm256_setr_epi32(0, 0, -1, -1, 0, 0, -1, -1);
  const __m256i earlier3 = _mm256_setr_epi32(0, -1, -1, -1, 0, -1, -1, -1);
  int64_t alive_total = 0, pruned = 0, i = 0;
  for (; i + 8 <= len; i += 8) {
    const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(mask + i));
    const __m256i alive = _mm256_xor_si256(
        _mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(bytes), _mm256_setzero_si256()), ones);
    const int alive_bits = _mm256_movemask_ps(_mm256_castsi256_ps(alive));
    if (alive_bits == 0) continue;
    const __m256i key = _mm256_or_si256(keys8(w + i), _mm256_andnot_si256(alive, ones));
    __m256i count = _mm256_setzero_si256();
    count = count_beaten(count, key, _mm256_shuffle_epi32(key, _MM_SHUFFLE(0, 3, 2, 1)), earlier1);
    count = count_beaten(count, key, _mm256_shuffle_epi32(key, _MM_SHUFFLE(1, 0, 3, 2)), earlier2);
    count = count_beaten(count, key, _mm256_shuffle_epi32(key, _MM_SHUFFLE(2, 1, 0, 3)), earlier3);
    const __m256i keep = _mm256_and_si256(alive, _mm256_cmpgt_epi32(limit, count));
    // 8 lanes of 0 / -1 to 8 bytes of 0 / 1
    const __m128i half = _mm_packs_epi32(_mm256_castsi256_si128(keep),
                                         _mm256_extracti128_si256(keep, 1));
    const __m128i out8 = _mm_and_si128(_mm_packs_epi16(half, half), _mm_set1_epi8(1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(mask + i), out8);
    const int keep_bits = _mm256_movemask_ps(_mm256_castsi256_ps(keep));
    alive_total += _mm_popcnt_u32(alive_bits);
    pruned += _mm_popcnt_u32(alive_bits & ~keep_bits);
  }
  out->alive += alive_total;
  out->pruned += pruned;
  portable::keep_nm_bits(w + i, mask + i, (len - i) / 4, 1, n, 4, out);
}

LTH_AVX2 bool has_nan32(const uint32_t* w, int64_t n, uint32_t inf) {
  // keys and inf are < 2^31: a signed compare orders them
  const __m256i abs = _mm256_set1_epi32(0x7FFFFFFF), vinf = _mm256_set1_epi32(inf);
  __m256i nan = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i k =
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)), abs);
    nan = _mm256_or_si256(nan, _mm256_cmpgt_epi32(k, vinf));
  }
  return !_mm256_testz_si256(nan, nan) || portable::has_nan_bits(w + i, n - i, inf);
}

bool has_nan_avx2(DType t, const void* w, int64_t n) {
  if (t == DType::f32)
    return has_nan32(static_cast<const uint32_t*>(w), n, static_cast<uint32_t>(inf_key(t)));
  return portable::has_nan(t, w, n);
}

void keep_nm_avx2(DType t, const void* w, uint8_t* mask, int64_t blocks, int64_t stride, int n,
                  int m, NmCounts* out) {
  if (m == 4 && stride == 1 && t == DType::f32)
    return keep_n_of_4(static_cast<const uint32_t*>(w), mask, blocks, n, out);
  if (m == 4 && stride == 1 && (t == DType::f16 || t == DType::bf16))
    return keep_n_of_4(static_cast<const uint16_t*>(w), mask, blocks, n, out);
  portable::keep_nm(t, w, mask, blocks, stride, n, m, out);
}

}  // namespace
}  // namespace avx2_kernels

extern const NmKernels kNmAvx2 = {avx2_kernels::has_nan_avx2, avx2_kernels::keep_nm_avx2};

}  // namespace lth_fast::simd
