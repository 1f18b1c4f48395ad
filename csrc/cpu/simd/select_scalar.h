// Portable loops for the selection kernels. The scalar ISA uses them for whole runs, the SIMD
// ISAs for the tail after their last full vector. Header-only templates compiled with the base
// flags, so they carry no AVX instruction into code that runs on any CPU.
#pragma once
#include <cstdint>

#include "cpu/simd/select.h"

namespace lth_fast::simd::portable {

template <typename Bits>
constexpr Bits abs_mask() {
  return static_cast<Bits>(static_cast<Bits>(~Bits(0)) >> 1);  // no int promotion
}

// Histogram counts where many entries may share a bucket (ties), without one chain of
// read-modify-writes through that bucket (each waits for the last, ~5 cycles):
// - MarkCounts (the marking pass's 253 buckets): entry j counts into sub-count j % 4, and the
//   four are added into hist once, at the end of the run;
// - RunCounts (the counting pass's 4096 buckets): equal consecutive buckets are summed first.
class MarkCounts {
 public:
  explicit MarkCounts(int64_t* hist) : hist_(hist) {}
  ~MarkCounts() {
    for (int b = 0; b < kMarkBuckets; ++b)
      hist_[b] += int64_t(sub_[0][b]) + sub_[1][b] + sub_[2][b] + sub_[3][b];
  }
  template <typename T>
  void add(const T* buckets, int n, int bias) {  // counts buckets[j] - bias, j < n
    int j = 0;
    for (; j + 4 <= n; j += 4)
      for (int q = 0; q < 4; ++q) ++sub_[q][buckets[j + q] - bias];
    for (; j < n; ++j) ++sub_[0][buckets[j] - bias];
  }

 private:
  int64_t* hist_;
  uint32_t sub_[4][256] = {};  // per run of at most kChunk (2^16) entries: no overflow
};

class RunCounts {
 public:
  explicit RunCounts(int64_t* hist) : hist_(hist) {}
  ~RunCounts() { hist_[last_] += run_; }
  void add(uint64_t b) {
    if (b == last_) {
      ++run_;
      return;
    }
    hist_[last_] += run_;
    last_ = b;
    run_ = 1;
  }

 private:
  int64_t* hist_;
  uint64_t last_ = 0;
  int64_t run_ = 0;
};

template <typename Bits>
void count_band(const Bits* w, const uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                int shift, int64_t* hist, uint64_t inf, BandCount* out) {
  int64_t alive = 0, below = 0, in_band = 0;
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t key = w[i] & abs_mask<Bits>();
    nan |= key > inf;
    const int64_t a = m[i] != 0;
    alive += a;
    below += a & (key < lo);
    if (a && key >= lo && key < hi) {
      ++in_band;
      ++hist[(key - lo) >> shift];
    }
  }
  out->alive += alive;
  out->below += below;
  out->in_band += in_band;
  out->has_nan |= nan;
}

template <typename Bits>
int64_t cut_below(const Bits* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                  int64_t* idx, int64_t cap, int64_t base) {
  int64_t found = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t key = w[i] & abs_mask<Bits>();
    const bool keep = m[i] != 0 && key >= lo;
    m[i] = keep;
    if (keep && key < hi) {
      if (found < cap) idx[found] = base + i;
      ++found;
    }
  }
  return found;
}

template <typename Bits>
void mark(const Bits* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi, int shift,
          int64_t* hist, uint64_t inf, BandCount* out) {
  int64_t alive = 0, below = 0, in_band = 0;
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t key = w[i] & abs_mask<Bits>();
    nan |= key > inf;
    if (!m[i]) continue;
    ++alive;
    if (key < lo) {
      m[i] = kMarkBelow;
      ++below;
    } else if (key < hi) {
      const uint64_t b = (key - lo) >> shift;
      m[i] = static_cast<uint8_t>(2 + b);
      ++hist[b];
      ++in_band;
    }  // else stays 1
  }
  out->alive += alive;
  out->below += below;
  out->in_band += in_band;
  out->has_nan |= nan;
}

inline int64_t resolve(uint8_t* m, int64_t n, int cut, uint8_t below_value, int64_t* idx,
                       int64_t cap, int64_t base) {
  int64_t found = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int v = m[i];
    if (v <= 1) continue;
    if (v == kMarkBelow) {
      m[i] = below_value;
    } else if (v - 2 == cut) {
      m[i] = 1;
      if (found < cap) idx[found] = base + i;
      ++found;
    } else {
      m[i] = v - 2 > cut;
    }
  }
  return found;
}

// Calls f with the weights viewed as the unsigned integers of their width.
template <typename F>
auto with_bits(DType t, const void* w, F&& f) {
  switch (t) {
    case DType::f32: return f(static_cast<const uint32_t*>(w));
    case DType::f64: return f(static_cast<const uint64_t*>(w));
    default: return f(static_cast<const uint16_t*>(w));
  }
}

}  // namespace lth_fast::simd::portable
