// AVX-512 STREAM probes (cpu/simd/stream.h): 64-byte loads and non-temporal stores. Only the
// functions marked LTH_AVX512 hold AVX-512 code; they run only after cpu_supports said yes.
#include <immintrin.h>

#include "cpu/simd/prefetch.h"
#include "cpu/simd/stream.h"
#include "cpu/simd/stream_tails.h"

#define LTH_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2")))

namespace lth_fast::simd {
namespace avx512_kernels {
namespace {

constexpr int64_t W = 16;  // floats per vector

LTH_AVX512 uint64_t read(const float* x, int64_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {  // four independent chains
    for (int64_t line = 0; line < 4 * W; line += 16)  // one core keeps too few lines in flight
      prefetch_ahead_of(x + i + line, kPrefetchAhead * static_cast<int64_t>(sizeof(float)));
    a0 = _mm512_add_epi32(a0, _mm512_loadu_si512(x + i));
    a1 = _mm512_add_epi32(a1, _mm512_loadu_si512(x + i + W));
    a2 = _mm512_add_epi32(a2, _mm512_loadu_si512(x + i + 2 * W));
    a3 = _mm512_add_epi32(a3, _mm512_loadu_si512(x + i + 3 * W));
  }
  const __m512i s = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
  return static_cast<uint32_t>(static_cast<uint32_t>(_mm512_reduce_add_epi32(s)) +
                               tails::read(x + i, n - i));
}

LTH_AVX512 void write(float* x, int64_t n, float value) {
  const int64_t h = tails::head(x, n, W);
  tails::write(x, h, value);
  const __m512 v = _mm512_set1_ps(value);
  int64_t i = h;
  for (; i + W <= n; i += W) _mm512_stream_ps(x + i, v);
  tails::write(x + i, n - i, value);
  _mm_sfence();
}

LTH_AVX512 void copy(float* dst, const float* src, int64_t n) {
  const int64_t h = tails::head(dst, n, W);
  tails::copy(dst, src, h);
  int64_t i = h;
  for (; i + W <= n; i += W) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  tails::copy(dst + i, src + i, n - i);
  _mm_sfence();
}

LTH_AVX512 void triad(float* a, const float* b, const float* c, float s, int64_t n) {
  const int64_t h = tails::head(a, n, W);
  tails::triad(a, b, c, s, h);
  const __m512 vs = _mm512_set1_ps(s);
  int64_t i = h;
  for (; i + W <= n; i += W)
    _mm512_stream_ps(a + i, _mm512_add_ps(_mm512_loadu_ps(b + i),
                                          _mm512_mul_ps(vs, _mm512_loadu_ps(c + i))));
  tails::triad(a + i, b + i, c + i, s, n - i);
  _mm_sfence();
}

// The update streams four quarters of its buffers side by side: twelve streams in flight (an
// Adam step has eight), where one pass over each buffer would keep three.
LTH_AVX512 void update(float* a, const float* b, float* c, float s, int64_t n) {
  const __m512 vs = _mm512_set1_ps(s);
  const int64_t part = n / 4 / W * W;
  for (int64_t i = 0; i < part; i += W)
    for (int64_t j = i; j < 4 * part; j += part) {
      const __m512 cj =
          _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(c + j), vs), _mm512_loadu_ps(b + j));
      _mm512_storeu_ps(c + j, cj);
      _mm512_storeu_ps(a + j, _mm512_add_ps(_mm512_loadu_ps(a + j), cj));
    }
  tails::update(a + 4 * part, b + 4 * part, c + 4 * part, s, n - 4 * part);
}

}  // namespace
}  // namespace avx512_kernels

extern const StreamKernels kStreamAvx512 = {avx512_kernels::read, avx512_kernels::write,
                                            avx512_kernels::copy, avx512_kernels::triad,
                                            avx512_kernels::update};

}  // namespace lth_fast::simd
