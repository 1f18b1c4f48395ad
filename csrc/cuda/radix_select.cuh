// Device kernels of lth_fast::prune_: an exact radix select of the k-th smallest alive key per
// ranking ("group"), over a chunk table (multi_tensor.cuh), with no host synchronisation.
//
// A weight's key is its raw bits with the sign bit cleared: for non-negative IEEE floats the
// integer order of the bits is the value order, so -0.0 == +0.0 and inf is the largest; NaN
// keys lie above inf's and are an error. Per pass, from the top digit down: hist_kernel
// counts the alive keys that share the digits chosen so far (shared-memory histogram per
// block, flushed to a global one per group); select_kernel (one warp per group) scans it and
// keeps the digit holding the k-th key. After the last pass the threshold key T is known, and
// `kk` of the alive keys equal to T are to be pruned (all keys < T are). If kk < #ties, the
// ties are ranked by position: tie_count_kernel counts them per chunk, tie_scan_kernel makes
// an exclusive scan over chunks, and write_kernel ranks within the one boundary chunk by a
// block scan. Every kernel after an error (NaN anywhere, k > alive) writes no mask.
#pragma once
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "cuda/multi_tensor.cuh"

namespace lth_fast::cuda {

constexpr int kThreads = 256;       // block size of the chunk kernels
constexpr int kScanThreads = 1024;  // the single block of tie_scan_kernel
// A block flushes its 32-bit shared histogram at least every this many chunks (2^29 elements).
constexpr int64_t kFlushChunks = 8192;

// Key formats: bits type, key width, radix digit width, +inf's key, key -> magnitude.
enum KeyType : int { kF32 = 0, kF16 = 1, kBF16 = 2, kF64 = 3 };
template <int T> struct Keys;
template <> struct Keys<kF32> {
  using Bits = uint32_t;
  static constexpr int kBits = 32, kDigit = 11;  // 11/11/10
  static constexpr uint64_t kInf = 0x7F800000ull;
  __device__ static double magnitude(uint64_t k) { return __uint_as_float(unsigned(k)); }
};
template <> struct Keys<kBF16> {  // bfloat16 is the top half of a float32
  using Bits = uint16_t;
  static constexpr int kBits = 16, kDigit = 8;   // 8/8
  static constexpr uint64_t kInf = 0x7F80ull;
  __device__ static double magnitude(uint64_t k) { return __uint_as_float(unsigned(k) << 16); }
};
template <> struct Keys<kF16> {
  using Bits = uint16_t;
  static constexpr int kBits = 16, kDigit = 8;
  static constexpr uint64_t kInf = 0x7C00ull;
  __device__ static double magnitude(uint64_t k) {  // exact, as the CPU's key_to_double
    const int e = int(k >> 10) & 0x1F, f = int(k) & 0x3FF;
    if (e == 0) return ldexp(double(f), -24);
    if (e == 31) return __longlong_as_double(f ? 0x7FF8000000000000ll : 0x7FF0000000000000ll);
    return ldexp(1.0 + f / 1024.0, e - 15);
  }
};
template <> struct Keys<kF64> {
  using Bits = uint64_t;
  static constexpr int kBits = 64, kDigit = 11;  // 11 x 5 + 9
  static constexpr uint64_t kInf = 0x7FF0000000000000ull;
  __device__ static double magnitude(uint64_t k) { return __longlong_as_double((long long)k); }
};

// Digit p (0 = most significant) covers key bits [shift(p), shift(p) + width(p)).
template <class K> struct Radix {
  static constexpr int kPasses = (K::kBits + K::kDigit - 1) / K::kDigit;
  static constexpr int kBins = 1 << K::kDigit;
  __host__ __device__ static constexpr int shift(int p) {
    return K::kBits - K::kDigit * (p + 1) > 0 ? K::kBits - K::kDigit * (p + 1) : 0;
  }
  __host__ __device__ static constexpr int width(int p) { return K::kBits - K::kDigit * p - shift(p); }
};

// Written by the host before the first launch; read back once after the last.
struct Status {
  unsigned long long nan_tensor;  // smallest tensor index holding a NaN (ULLONG_MAX: none)
  unsigned long long bad_group;   // smallest group whose count exceeds its alive entries
  unsigned long long any_rank;    // some group must rank its ties by position
};

struct GroupState {  // zeroed before the first launch
  long long alive, k;
  long long kk;                  // rank (1-based) of the k-th key among those matching prefix
  long long ties;                // after the last pass: alive keys equal to T
  unsigned long long prefix;     // digits chosen so far; after the last pass, T itself
  int active;                    // 0 < k <= alive: this group prunes something
  int need_rank;                 // after the last pass: kk < ties, so ties are ranked
};

struct SelectArgs {  // everything a kernel needs, by value; all pointers are device pointers
  const void* const* weights;
  uint8_t* const* masks;
  const Chunk* chunks;
  long long num_chunks;
  const long long* first_chunk;  // per group
  const double* fractions;       // per group, used unless by_count
  const long long* counts;       // per group, used when by_count
  int by_count;
  Status* status;
  GroupState* groups;
  unsigned long long* hist;      // [groups][kBins], zero between passes
  unsigned long long* tie_count; // per chunk
  long long* tie_before;         // per chunk: exclusive scan of tie_count over all chunks
  long long* stats;              // out [groups][2]: alive, pruned
  double* thresholds;            // out [groups]
};

__device__ __forceinline__ bool failed(const Status* s) {
  return s->nan_tensor != ULLONG_MAX || s->bad_group != ULLONG_MAX;
}

// Calls f(key, alive, i) for every element i of a chunk, 4 coalesced loads in flight per thread.
template <class K, class F>
__device__ __forceinline__ void visit_chunk(const SelectArgs& a, const Chunk& ch, F f) {
  using Bits = typename K::Bits;
  const Bits abs_mask = Bits(~(Bits(1) << (K::kBits - 1)));
  const Bits* w = static_cast<const Bits*>(a.weights[ch.tensor]) + ch.start;
  const uint8_t* m = a.masks[ch.tensor] + ch.start;
  constexpr int U = 4;
  for (int64_t base = threadIdx.x; base < ch.len; base += int64_t(blockDim.x) * U) {
    Bits b[U];
    uint8_t alive[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = base + int64_t(u) * blockDim.x;
      b[u] = i < ch.len ? w[i] : Bits(0);
      alive[u] = i < ch.len ? m[i] : 0;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = base + int64_t(u) * blockDim.x;
      if (i < ch.len) f(Bits(b[u] & abs_mask), alive[u] != 0, i);
    }
  }
}

// Exclusive prefix sum of v over the block (blockDim a multiple of 32, every thread calls);
// `total` gets the block's sum. warp_sums: 32 shared slots.
__device__ __forceinline__ long long block_exclusive_scan(long long v, long long* warp_sums,
                                                          long long& total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  long long x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const long long y = __shfl_up_sync(0xFFFFFFFFu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    long long s = lane < warps ? warp_sums[lane] : 0;
    for (int o = 1; o < 32; o <<= 1) {
      const long long y = __shfl_up_sync(0xFFFFFFFFu, s, o);
      if (lane >= o) s += y;
    }
    warp_sums[lane] = s;
  }
  __syncthreads();
  total = warp_sums[warps - 1];
  const long long r = (warp ? warp_sums[warp - 1] : 0) + x - v;
  __syncthreads();  // warp_sums is reused by the next call
  return r;
}

template <int kBins>
__device__ __forceinline__ void flush_hist(unsigned int* sh, unsigned long long* global) {
  __syncthreads();
  for (int b = threadIdx.x; b < kBins; b += blockDim.x) {
    const unsigned int v = sh[b];
    if (v) {
      atomicAdd(global + b, (unsigned long long)v);
      sh[b] = 0;
    }
  }
  __syncthreads();
}

// Pass p: histogram of digit p over the alive keys matching the group's prefix. Pass 0 counts
// every alive key (their sum is the alive count) and looks for NaN in every entry.
template <class K>
__global__ void __launch_bounds__(kThreads) hist_kernel(SelectArgs a, int pass) {
  using Bits = typename K::Bits;
  using R = Radix<K>;
  __shared__ unsigned int sh[R::kBins];
  for (int b = threadIdx.x; b < R::kBins; b += blockDim.x) sh[b] = 0;
  __syncthreads();
  const int shift = R::shift(pass), high = shift + R::width(pass);
  const Bits digit_mask = Bits((uint64_t(1) << R::width(pass)) - 1);
  int cur = -1;  // the group sh is counting for; flushed when the group changes
  int64_t since = 0;
  for (int64_t c = blockIdx.x; c < a.num_chunks; c += gridDim.x) {
    const Chunk ch = a.chunks[c];
    if (pass > 0 && !a.groups[ch.group].active) continue;  // uniform over the block
    if (ch.group != cur || since >= kFlushChunks) {
      if (cur >= 0) flush_hist<R::kBins>(sh, a.hist + int64_t(cur) * R::kBins);
      cur = ch.group;
      since = 0;
    }
    ++since;
    const Bits prefix = Bits(a.groups[cur].prefix);
    bool nan = false;
    visit_chunk<K>(a, ch, [&](Bits key, bool alive, int64_t) {
      if (pass == 0) nan |= key > Bits(K::kInf);
      if (alive && (pass == 0 || (key >> high) == (prefix >> high)))
        atomicAdd(&sh[(key >> shift) & digit_mask], 1u);
    });
    if (pass == 0 && __syncthreads_or(nan) && threadIdx.x == 0)
      atomicMin(&a.status->nan_tensor, (unsigned long long)ch.tensor);
  }
  if (cur >= 0) flush_hist<R::kBins>(sh, a.hist + int64_t(cur) * R::kBins);
}

// One warp per group: finds the digit holding the kk-th key, narrows prefix and kk, and clears
// the group's histogram for the next pass. Pass 0 also computes alive, k and the outputs.
template <class K>
__global__ void select_kernel(SelectArgs a, int pass) {
  using R = Radix<K>;
  constexpr int kPer = R::kBins / 32;  // contiguous bins per lane
  const int64_t g = blockIdx.x;
  const int lane = threadIdx.x;
  GroupState* s = a.groups + g;
  unsigned long long* h = a.hist + g * R::kBins + lane * kPer;
  long long sum = 0;
  for (int j = 0; j < kPer; ++j) sum += (long long)h[j];
  long long incl = sum;
  for (int o = 1; o < 32; o <<= 1) {
    const long long y = __shfl_up_sync(0xFFFFFFFFu, incl, o);
    if (lane >= o) incl += y;
  }
  long long kk;
  int active;
  if (pass == 0) {
    const long long alive = __shfl_sync(0xFFFFFFFFu, incl, 31);
    // rint: round half to even, as the CPU's nearbyint and Python's round.
    const long long k = a.by_count ? a.counts[g] : (long long)rint(a.fractions[g] * double(alive));
    active = k > 0 && k <= alive;
    kk = k;
    if (lane == 0) {
      s->alive = alive;
      s->k = k;
      s->kk = k;
      s->active = active;
      a.stats[2 * g] = alive;
      a.stats[2 * g + 1] = k;
      a.thresholds[g] = __longlong_as_double(0x7FF8000000000000ll);  // NaN: nothing pruned
      if (k > alive) atomicMin(&a.status->bad_group, (unsigned long long)g);
    }
  } else {
    active = s->active;
    kk = s->kk;
  }
  __syncwarp();
  const long long excl = incl - sum;
  if (active && excl < kk && kk <= incl) {  // exactly one lane holds the kk-th key
    long long cum = excl;
    int j = 0;
    for (; j < kPer - 1 && cum + (long long)h[j] < kk; ++j) cum += (long long)h[j];
    const long long here = (long long)h[j];
    const unsigned long long prefix =
        s->prefix | ((unsigned long long)(lane * kPer + j) << R::shift(pass));
    s->prefix = prefix;
    s->kk = kk - cum;
    if (pass == R::kPasses - 1) {
      s->ties = here;
      s->need_rank = kk - cum < here;
      if (kk - cum < here) a.status->any_rank = 1;  // every writer writes 1
      a.thresholds[g] = K::magnitude(prefix);
    }
  }
  __syncwarp();
  for (int j = 0; j < kPer; ++j) h[j] = 0;
}

// Per chunk of a group that ranks its ties: how many alive keys equal T.
template <class K>
__global__ void __launch_bounds__(kThreads) tie_count_kernel(SelectArgs a) {
  using Bits = typename K::Bits;
  if (!a.status->any_rank || failed(a.status)) return;
  for (int64_t c = blockIdx.x; c < a.num_chunks; c += gridDim.x) {
    const Chunk ch = a.chunks[c];
    const GroupState& s = a.groups[ch.group];
    if (!s.active || !s.need_rank) continue;
    const Bits t = Bits(s.prefix);
    long long n = 0;
    visit_chunk<K>(a, ch, [&](Bits key, bool alive, int64_t) { n += alive && key == t; });
    for (int o = 16; o > 0; o >>= 1) n += __shfl_down_sync(0xFFFFFFFFu, n, o);
    if ((threadIdx.x & 31) == 0 && n) atomicAdd(&a.tie_count[c], (unsigned long long)n);
  }
}

// One block: tie_before = exclusive scan of tie_count over all chunks (a group subtracts the
// value at its first chunk).
__global__ void __launch_bounds__(kScanThreads) tie_scan_kernel(SelectArgs a) {
  __shared__ long long warp_sums[32];
  if (!a.status->any_rank || failed(a.status)) return;
  long long carry = 0;
  for (int64_t base = 0; base < a.num_chunks; base += blockDim.x) {
    const int64_t i = base + threadIdx.x;
    const long long v = i < a.num_chunks ? (long long)a.tie_count[i] : 0;
    long long total;
    const long long r = block_exclusive_scan(v, warp_sums, total);
    if (i < a.num_chunks) a.tie_before[i] = carry + r;
    carry += total;
  }
}

// Clears the mask of every alive key < T and of the first kk alive keys == T (by position).
template <class K>
__global__ void __launch_bounds__(kThreads) write_kernel(SelectArgs a) {
  using Bits = typename K::Bits;
  __shared__ long long warp_sums[32];
  if (failed(a.status)) return;  // validate first, then write: on error nothing changes
  for (int64_t c = blockIdx.x; c < a.num_chunks; c += gridDim.x) {
    const Chunk ch = a.chunks[c];
    const GroupState& s = a.groups[ch.group];
    if (!s.active) continue;
    const Bits t = Bits(s.prefix);
    const long long need = s.kk;
    uint8_t* m = a.masks[ch.tensor] + ch.start;
    long long before = 0;  // ties of this group in earlier chunks
    bool ties_too = true;  // prune every tie in this chunk
    bool ranked = false;   // the boundary chunk: rank ties one by one
    if (s.need_rank) {
      before = a.tie_before[c] - a.tie_before[a.first_chunk[ch.group]];
      ties_too = before + (long long)a.tie_count[c] <= need;
      ranked = !ties_too && before < need;
    }
    if (!ranked) {
      visit_chunk<K>(a, ch, [&](Bits key, bool alive, int64_t i) {
        if (alive && (key < t || (ties_too && key == t))) m[i] = 0;
      });
      continue;
    }
    const Bits abs_mask = Bits(~(Bits(1) << (K::kBits - 1)));
    const Bits* w = static_cast<const Bits*>(a.weights[ch.tensor]) + ch.start;
    for (int64_t base = 0; base < ch.len; base += blockDim.x) {  // in order, one tile at a time
      const int64_t i = base + threadIdx.x;
      const bool alive = i < ch.len && m[i];
      const Bits key = i < ch.len ? Bits(w[i] & abs_mask) : Bits(0);
      const bool tie = alive && key == t;
      long long total;
      const long long r = block_exclusive_scan(tie ? 1 : 0, warp_sums, total);
      if (alive && (key < t || (tie && before + r < need))) m[i] = 0;
      before += total;
    }
  }
}

}  // namespace lth_fast::cuda
