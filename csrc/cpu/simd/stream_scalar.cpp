// The scalar ISA's STREAM probes (cpu/simd/stream.h): the portable loops (which the compiler
// may vectorize with the base flags), with SSE streaming stores, which every x86-64 has.
#include "cpu/simd/stream.h"
#include "cpu/simd/stream_tails.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LTH_HAS_SSE_STREAM 1
#endif

namespace lth_fast::simd {
namespace {

void write(float* x, int64_t n, float value) {
#ifdef LTH_HAS_SSE_STREAM
  const int64_t h = tails::head(x, n, 4);
  tails::write(x, h, value);
  int64_t i = h;
  for (; i + 4 <= n; i += 4) _mm_stream_ps(x + i, _mm_set1_ps(value));
  tails::write(x + i, n - i, value);
  _mm_sfence();
#else
  tails::write(x, n, value);
#endif
}

void copy(float* dst, const float* src, int64_t n) {
#ifdef LTH_HAS_SSE_STREAM
  const int64_t h = tails::head(dst, n, 4);
  tails::copy(dst, src, h);
  int64_t i = h;
  for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
  tails::copy(dst + i, src + i, n - i);
  _mm_sfence();
#else
  tails::copy(dst, src, n);
#endif
}

void triad(float* a, const float* b, const float* c, float s, int64_t n) {
#ifdef LTH_HAS_SSE_STREAM
  const int64_t h = tails::head(a, n, 4);
  tails::triad(a, b, c, s, h);
  int64_t i = h;
  for (; i + 4 <= n; i += 4)
    _mm_stream_ps(a + i, _mm_add_ps(_mm_loadu_ps(b + i),
                                    _mm_mul_ps(_mm_set1_ps(s), _mm_loadu_ps(c + i))));
  tails::triad(a + i, b + i, c + i, s, n - i);
  _mm_sfence();
#else
  tails::triad(a, b, c, s, n);
#endif
}

}  // namespace

extern const StreamKernels kStreamScalar = {tails::read, write, copy, triad, tails::update};

}  // namespace lth_fast::simd
