// Torch-free kernels for magnitude selection, on raw pointers over one contiguous run.
//
// Every weight is ranked by its *key*: its raw bits with the sign bit cleared. For non-negative
// IEEE floats the integer order of the bits is the value order, so -0.0 == +0.0, denormals and
// inf rank correctly, and the selection itself is integer work whatever the dtype. NaN keys lie
// above the key of inf; callers reject them.
#pragma once
#include <cstdint>

namespace lth_fast::simd {

enum class DType : int { f32 = 0, f16 = 1, bf16 = 2, f64 = 3 };
enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

// Largest non-NaN key (the key of +inf) and one past the largest key of any bit pattern.
inline uint64_t inf_key(DType t) {
  switch (t) {
    case DType::f32: return 0x7F800000ull;
    case DType::f16: return 0x7C00ull;
    case DType::bf16: return 0x7F80ull;
    default: return 0x7FF0000000000000ull;
  }
}
inline uint64_t key_end(DType t) {
  switch (t) {
    case DType::f32: return 0x80000000ull;
    case DType::f16:
    case DType::bf16: return 0x8000ull;
    default: return 0x8000000000000000ull;
  }
}
// Bytes of one weight (and of its key) of dtype t.
inline int64_t key_bytes(DType t) {
  return t == DType::f32 ? 4 : t == DType::f64 ? 8 : 2;
}
uint64_t key_at(DType t, const void* w, int64_t i);
double key_to_double(DType t, uint64_t key);

// What one counting pass over a run found.
struct BandCount {
  int64_t alive = 0;     // mask true
  int64_t below = 0;     // alive and key < lo
  int64_t in_band = 0;   // alive and lo <= key < hi
  bool has_nan = false;  // any entry (alive or not) with a NaN key
};

// Counting pass: fills `out` and, for each alive entry with lo <= key < hi, increments
// hist[(key - lo) >> shift]. Requires lo < hi <= key_end(t).
using CountBandFn = void (*)(DType t, const void* w, const uint8_t* m, int64_t n, uint64_t lo,
                             uint64_t hi, int shift, int64_t* hist, BandCount* out);

// Writing pass: clears the mask of every alive entry with key < lo; alive entries with
// lo <= key < hi are kept, and their indices are written to idx[0..cap). Returns how many
// such entries there are (which may exceed cap; the mask writes are idempotent).
using CutBelowFn = int64_t (*)(DType t, const void* w, uint8_t* m, int64_t n, uint64_t lo,
                               uint64_t hi, int64_t* idx, int64_t cap);

// The one-pass fast path keeps its working state in the mask bytes themselves, so a miss or an
// error can always be undone from them: 0 dead, 1 alive with key >= hi, kMarkBelow alive with
// key < lo, and 2 + b alive with lo <= key < hi in bucket b = (key - lo) >> shift < kMarkBuckets.
constexpr int kMarkBuckets = 253;
constexpr uint8_t kMarkBelow = 255;

// Marking pass: rewrites m as above, counts like count_band, hist has kMarkBuckets entries.
using MarkFn = void (*)(DType t, const void* w, uint8_t* m, int64_t n, uint64_t lo, uint64_t hi,
                        int shift, int64_t* hist, BandCount* out);

// Resolving pass over marks only: 0 and 1 stay; kMarkBelow becomes below_value; bucket b
// becomes 0 if b < cut and 1 if b > cut; bucket == cut becomes 1 and its index is written to
// idx[0..cap). Returns how many entries were in bucket `cut`. cut = -1 with below_value = 1
// restores the masks as they were before marking.
using ResolveFn = int64_t (*)(uint8_t* m, int64_t n, int cut, uint8_t below_value, int64_t* idx,
                              int64_t cap);

struct SelectKernels {
  CountBandFn count_band;
  CutBelowFn cut_below;
  MarkFn mark;
  ResolveFn resolve;
};

// The kernels of one ISA; nullptr where this CPU cannot run it.
const SelectKernels* select_kernels(Isa isa);

}  // namespace lth_fast::simd
