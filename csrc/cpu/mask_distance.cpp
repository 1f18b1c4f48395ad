// CPU kernel of lth_fast::mask_distance: per pair of masks, how many entries differ. One pass
// reading both lists once, parallel over chunks (cpu/parallel.h).
//
// Both layouts reduce to counting the set bits of a ^ b: a torch.bool byte is 0 or 1, so two
// bool bytes differ exactly when their xor has one bit set; a packed byte holds 8 entries, one
// a bit. Only the last byte of a packed mask needs care: its padding bits (the low bits, as
// pack_bits fills bytes from the most significant bit) are not entries and are not counted.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/op_checks.h"
#include "cpu/parallel.h"

namespace lth_fast::cpu {
namespace {

// Set bits of each byte of x, as bytes (0..8), without a popcount instruction (the base x86-64
// flags have none, and __builtin_popcountll then becomes a library call per word).
inline uint64_t byte_popcounts(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  return (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
}

// The sum of the 8 bytes of x, each at most 255.
inline int64_t byte_sum(uint64_t x) {
  const uint64_t pairs = (x & 0x00FF00FF00FF00FFull) + ((x >> 8) & 0x00FF00FF00FF00FFull);
  return static_cast<int64_t>((pairs * 0x0001000100010001ull) >> 48);
}

// Set bits of a[i] ^ b[i] over n bytes. Byte counts (at most 8 each) are summed per byte lane
// for 31 words at a time (31 * 8 = 248 fits a byte) before one horizontal sum.
int64_t differing_bits(const uint8_t* a, const uint8_t* b, int64_t n) {
  int64_t total = 0;
  int64_t i = 0;
  while (n - i >= 8) {
    uint64_t lanes = 0;
    for (int w = 0; w < 31 && n - i >= 8; ++w, i += 8) {
      uint64_t x, y;
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      lanes += byte_popcounts(x ^ y);
    }
    total += byte_sum(lanes);
  }
  for (; i < n; ++i) total += byte_sum(byte_popcounts(static_cast<uint64_t>(a[i] ^ b[i])));
  return total;
}

at::Tensor mask_distance_cpu(at::TensorList masks_a, at::TensorList masks_b,
                             at::IntArrayRef numels) {
  check_mask_distance(masks_a, masks_b, numels);
  const size_t n = masks_a.size();
  const bool packed = !numels.empty();
  std::vector<std::atomic<int64_t>> counts(n);
  for (auto& c : counts) c.store(0, std::memory_order_relaxed);
  for_each_chunk(masks_a, [&](int64_t t, int64_t start, int64_t len) {
    const auto* a = reinterpret_cast<const uint8_t*>(const_element_ptr(masks_a, t, start));
    const auto* b = reinterpret_cast<const uint8_t*>(const_element_ptr(masks_b, t, start));
    const int64_t tail_bits = packed ? numels[t] % 8 : 0;
    const bool last = start + len == masks_a[t].numel();
    int64_t d;
    if (tail_bits != 0 && last) {  // the last byte: only its first tail_bits bits are entries
      d = differing_bits(a, b, len - 1);
      const auto keep = static_cast<uint8_t>(0xFF00u >> tail_bits);
      d += byte_sum(byte_popcounts(static_cast<uint64_t>((a[len - 1] ^ b[len - 1]) & keep)));
    } else {
      d = differing_bits(a, b, len);
    }
    counts[t].fetch_add(d, std::memory_order_relaxed);
  });
  at::Tensor out = at::empty({static_cast<int64_t>(n)}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (size_t i = 0; i < n; ++i) o[i] = counts[i].load(std::memory_order_relaxed);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(lth_fast, CPU, m) { m.impl("mask_distance", &mask_distance_cpu); }

}  // namespace lth_fast::cpu
