// Portable loops for the N:M kernels (nm.h). The scalar ISA runs them for everything; the SIMD
// ISAs for the cases they have no vector loop for and for the tail after their last full
// vector. Header-only templates compiled with the base flags, so they carry no AVX
// instruction into code that runs on any CPU.
#pragma once
#include <cstdint>
#include <type_traits>

#include "cpu/simd/nm.h"
#include "cpu/simd/select_scalar.h"

namespace lth_fast::simd::portable {

template <typename Bits>
bool has_nan_bits(const Bits* w, int64_t n, Bits inf) {
  constexpr Bits abs = abs_mask<Bits>();
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) nan |= static_cast<Bits>(w[i] & abs) > inf;
  return nan;
}

inline bool has_nan(DType t, const void* w, int64_t n) {
  return with_bits(t, w, [&](auto* bits) {
    using Bits = std::remove_cv_t<std::remove_pointer_t<decltype(bits)>>;
    return has_nan_bits(bits, n, static_cast<Bits>(inf_key(t)));
  });
}

// The rule on one group at a time: the alive entries' keys are gathered in order, so "earlier
// position" is "earlier in the gathered list"; a group with at most n alive entries keeps all.
template <typename Bits>
void keep_nm_bits(const Bits* w, uint8_t* mask, int64_t blocks, int64_t stride, int n, int m,
                  NmCounts* out) {
  constexpr Bits abs = abs_mask<Bits>();
  Bits key[64];
  int pos[64];
  int64_t alive_total = 0, pruned = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const Bits* wb = w + b * m * stride;
    uint8_t* mb = mask + b * m * stride;
    for (int64_t s = 0; s < stride; ++s) {
      int alive = 0;
      for (int j = 0; j < m; ++j) {
        if (!mb[j * stride + s]) continue;
        key[alive] = static_cast<Bits>(wb[j * stride + s] & abs);
        pos[alive++] = j;
      }
      alive_total += alive;
      if (alive <= n) continue;
      for (int a = 0; a < alive; ++a) {
        int beaten = 0;
        for (int c = 0; c < alive; ++c) beaten += key[c] > key[a] || (key[c] == key[a] && c < a);
        if (beaten >= n) {
          mb[pos[a] * stride + s] = 0;
          ++pruned;
        }
      }
    }
  }
  out->alive += alive_total;
  out->pruned += pruned;
}

inline void keep_nm(DType t, const void* w, uint8_t* mask, int64_t blocks, int64_t stride, int n,
                    int m, NmCounts* out) {
  with_bits(t, w, [&](auto* bits) { keep_nm_bits(bits, mask, blocks, stride, n, m, out); });
}

}  // namespace lth_fast::simd::portable
