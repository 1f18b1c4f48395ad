// AVX-512 N:M kernels. Only the functions marked LTH_AVX512 contain AVX-512 instructions; they
// run only after cpu_supports(Isa::avx512) said yes.
//
// The vector loop covers the common case, m == 4 with contiguous groups (stride 1: Linear
// layers, 1-D tensors) of 32- or 16-bit weights: 16 keys, four whole groups, a vector. Each
// lane is compared with its three rotations inside its group; rotation r pairs lane i with
// lane (i + r) % 4, which comes earlier in the group exactly when i % 4 >= 4 - r. Dead lanes
// get key -1, below every alive key (keys are < 2^31), so they beat no one. A lane is kept iff
// it is alive and fewer than n lanes beat it. Everything else runs the portable loops.
#include <immintrin.h>

#include "cpu/simd/nm_portable.h"

// GCC 12 reports the _mm512_undefined_epi32() inside its own conversion and shuffle intrinsics
// as "may be used uninitialized"; the value is never read (every lane is written).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define LTH_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,popcnt")))

namespace lth_fast::simd {
// Named so the symbols of every function holding AVX-512 code say so (tests read them).
namespace avx512_kernels {
namespace {

LTH_AVX512 inline __m512i keys16(const uint32_t* w) {
  return _mm512_and_si512(_mm512_loadu_si512(w), _mm512_set1_epi32(0x7FFFFFFF));
}
LTH_AVX512 inline __m512i keys16(const uint16_t* w) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  return _mm512_and_si512(_mm512_cvtepu16_epi32(h), _mm512_set1_epi32(0x7FFF));
}

// Adds one to the count of every lane beaten by its partner `other` (rotation r), where
// `earlier` marks the lanes whose partner comes first.
LTH_AVX512 inline __m512i count_beaten(__m512i count, __m512i key, __m512i other,
                                       __mmask16 earlier) {
  const __mmask16 beaten = _mm512_cmpgt_epi32_mask(other, key) |
                           (_mm512_cmpeq_epi32_mask(other, key) & earlier);
  return _mm512_mask_add_epi32(count, beaten, count, _mm512_set1_epi32(1));
}

template <typename Bits>
LTH_AVX512 void keep_n_of_4(const Bits* w, uint8_t* mask, int64_t groups, int n,
                            NmCounts* out) {
  const int64_t len = groups * 4;
  const __m512i dead = _mm512_set1_epi32(-1), limit = _mm512_set1_epi32(n);
  int64_t alive_total = 0, pruned = 0, i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(mask + i));
    const __mmask16 alive = _mm_test_epi8_mask(bytes, bytes);
    if (alive == 0) continue;
    const __m512i key = _mm512_mask_blend_epi32(alive, dead, keys16(w + i));
    __m512i count = _mm512_setzero_si512();
    count = count_beaten(count, key, _mm512_shuffle_epi32(key, _MM_PERM_ADCB), 0x8888);
    count = count_beaten(count, key, _mm512_shuffle_epi32(key, _MM_PERM_BADC), 0xCCCC);
    count = count_beaten(count, key, _mm512_shuffle_epi32(key, _MM_PERM_CBAD), 0xEEEE);
    const __mmask16 keep = alive & _mm512_cmplt_epi32_mask(count, limit);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(mask + i),
                     _mm_maskz_mov_epi8(keep, _mm_set1_epi8(1)));
    alive_total += _mm_popcnt_u32(alive);
    pruned += _mm_popcnt_u32(alive & ~keep & 0xFFFF);
  }
  out->alive += alive_total;
  out->pruned += pruned;
  portable::keep_nm_bits(w + i, mask + i, (len - i) / 4, 1, n, 4, out);
}

LTH_AVX512 bool has_nan32(const uint32_t* w, int64_t n, uint32_t inf) {
  const __m512i abs = _mm512_set1_epi32(0x7FFFFFFF), vinf = _mm512_set1_epi32(inf);
  __mmask16 nan = 0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    nan |= _mm512_cmpgt_epu32_mask(_mm512_and_si512(_mm512_loadu_si512(w + i), abs), vinf);
  return nan != 0 || portable::has_nan_bits(w + i, n - i, inf);
}

bool has_nan_avx512(DType t, const void* w, int64_t n) {
  if (t == DType::f32)
    return has_nan32(static_cast<const uint32_t*>(w), n, static_cast<uint32_t>(inf_key(t)));
  return portable::has_nan(t, w, n);
}

void keep_nm_avx512(DType t, const void* w, uint8_t* mask, int64_t blocks, int64_t stride, int n,
                    int m, NmCounts* out) {
  if (m == 4 && stride == 1 && t == DType::f32)
    return keep_n_of_4(static_cast<const uint32_t*>(w), mask, blocks, n, out);
  if (m == 4 && stride == 1 && (t == DType::f16 || t == DType::bf16))
    return keep_n_of_4(static_cast<const uint16_t*>(w), mask, blocks, n, out);
  portable::keep_nm(t, w, mask, blocks, stride, n, m, out);
}

}  // namespace
}  // namespace avx512_kernels

extern const NmKernels kNmAvx512 = {avx512_kernels::has_nan_avx512,
                                    avx512_kernels::keep_nm_avx512};

}  // namespace lth_fast::simd
