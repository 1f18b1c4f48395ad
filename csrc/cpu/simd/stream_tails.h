// Element-by-element pieces of the STREAM probes (cpu/simd/stream.h): the scalar ISA's whole
// loops, and the unaligned heads and the tails of the vector ISAs. Compiled with the base flags.
#pragma once
#include <cstdint>
#include <cstring>

namespace lth_fast::simd::tails {

// Elements before dst + i is aligned to `width` floats (n if dst is not even float-aligned).
inline int64_t head(const float* dst, int64_t n, int64_t width) {
  const uintptr_t bytes = static_cast<uintptr_t>(width) * sizeof(float);
  const uintptr_t mis = reinterpret_cast<uintptr_t>(dst) % bytes;
  if (mis % sizeof(float)) return n;
  const int64_t h = mis ? static_cast<int64_t>((bytes - mis) / sizeof(float)) : 0;
  return h < n ? h : n;
}

inline uint64_t read(const float* x, int64_t n) {
  uint32_t s = 0;  // wraps: the checksum is the sum of the 32-bit words mod 2^32
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, 4);
    s += u;
  }
  return s;
}
inline void write(float* x, int64_t n, float value) {
  for (int64_t i = 0; i < n; ++i) x[i] = value;
}
inline void copy(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}
inline void triad(float* a, const float* b, const float* c, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}
inline void update(float* a, const float* b, float* c, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    c[i] = c[i] * s + b[i];
    a[i] = a[i] + c[i];
  }
}

}  // namespace lth_fast::simd::tails
