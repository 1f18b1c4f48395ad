// The passes of the one-pass selection engine as ops of their own, for the sharded selection
// of lth_fast/distributed (docs/semantics.md, "Sharded selection"): each rank runs them on its
// shards, and the ranks agree on the band and the cut between passes through integer
// collectives. Between mark_ and the resolving op that follows, the masks hold marks (see
// simd::kMarkBelow), not bools: only these ops may touch them then, and
// resolve_(cut=-1, below_value=1) undoes the marking exactly. Internal to lth_fast: their own
// library, lth_fast_shard, with CPU kernels only.
#include <ATen/core/Dict.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <string>
#include <tuple>

#include "common/op_checks.h"
#include "cpu/dispatch.h"
#include "cpu/select/one_pass.h"

namespace lth_fast::cpu {
namespace {

// mark_'s output, int64 [kMarkHist + simd::kMarkBuckets]: the counts at these indices, then
// the band's histogram. protocol() hands the layout to Python, which reads nothing else.
enum MarkField : int64_t {
  kMarkAlive, kMarkBelowBand, kMarkInBand, kMarkNan, kMarkShift, kMarkHist
};

SelectPlan plan_of(at::TensorList weights, at::TensorList masks) {
  const double none[] = {0.0};
  check_prune(weights, masks, none, {}, false);
  SelectPlan p;
  p.dtype = weights.empty() ? simd::DType::f32 : simd_dtype(weights[0].scalar_type());
  for (size_t i = 0; i < weights.size(); ++i)
    p.runs.push_back({weights[i].const_data_ptr(),
                      reinterpret_cast<uint8_t*>(masks[i].data_ptr<bool>()), weights[i].numel(),
                      static_cast<int64_t>(i)});
  p.chunks = make_chunks(p.runs);
  return p;
}

void check_cut(const char* op, int64_t cut) {
  TORCH_CHECK_VALUE(cut >= -1 && cut < simd::kMarkBuckets, op, ": cut must lie in [-1, ",
                    simd::kMarkBuckets, "), got ", cut);
}

// int64 [1 + n]: the entries the sample's blocks cover, then the n alive keys sampled.
at::Tensor sample(at::TensorList weights, at::TensorList masks, int64_t blocks) {
  SelectPlan p = plan_of(weights, masks);
  TORCH_CHECK_VALUE(blocks >= 0 && blocks <= (int64_t(1) << 20),
                    "sample: blocks must lie in [0, 2^20], got ", blocks);
  int64_t seen = 0;
  const std::vector<uint64_t> keys = sample_keys(p, blocks, &seen);
  at::Tensor out = at::empty({static_cast<int64_t>(keys.size()) + 1}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  o[0] = seen;
  for (size_t i = 0; i < keys.size(); ++i) o[i + 1] = static_cast<int64_t>(keys[i]);
  return out;
}

// int64 [kMarkHist + kMarkBuckets]: alive, below, in_band, first tensor with a NaN (or -1),
// shift, then the band's histogram (MarkField).
at::Tensor mark_(at::TensorList weights, at::TensorList masks, int64_t lo, int64_t hi) {
  SelectPlan p = plan_of(weights, masks);
  TORCH_CHECK_VALUE(lo >= 0 && lo < hi && static_cast<uint64_t>(hi) <= simd::key_end(p.dtype),
                    "mark_: the band [", lo, ", ", hi, ") is empty or beyond the keys");
  p.lo = static_cast<uint64_t>(lo);
  p.hi = static_cast<uint64_t>(hi);
  mark_pass(p, select_kernels());
  at::Tensor out = at::empty({kMarkHist + simd::kMarkBuckets}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  o[kMarkAlive] = p.alive;
  o[kMarkBelowBand] = p.below;
  o[kMarkInBand] = p.in_range;
  o[kMarkNan] = p.nan_index;
  o[kMarkShift] = p.shift;
  std::copy(p.hist.begin(), p.hist.end(), o + kMarkHist);
  return out;
}

// Resolves the marks (simd::ResolveFn); int64 [n, 3]: (tensor, element index, key) of the
// entries of bucket `cut`, in position order, when they number at most `cap` (else none).
at::Tensor resolve_(at::TensorList weights, at::TensorList masks, int64_t cut,
                    int64_t below_value, int64_t cap) {
  SelectPlan p = plan_of(weights, masks);
  check_cut("resolve_", cut);
  TORCH_CHECK_VALUE(below_value == 0 || below_value == 1, "resolve_: below_value must be 0 or 1");
  TORCH_CHECK_VALUE(cap >= 0, "resolve_: cap must be >= 0");
  std::vector<int64_t> packed = resolve_pass(p, static_cast<int>(cut),
                                             static_cast<uint8_t>(below_value), cap,
                                             select_kernels());
  std::sort(packed.begin(), packed.end());  // chunks are in position order
  at::Tensor out = at::empty({static_cast<int64_t>(packed.size()), 3}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (size_t j = 0; j < packed.size(); ++j) {
    const Chunk& ch = p.chunks[packed[j] >> 16];
    const int64_t index = ch.start + (packed[j] & 0xFFFF);
    o[3 * j] = p.runs[ch.run].index;
    o[3 * j + 1] = index;
    o[3 * j + 2] = static_cast<int64_t>(simd::key_at(p.dtype, p.runs[ch.run].w, index));
  }
  return out;
}

// int64 [tensors]: how many marks of bucket `cut` each tensor holds.
at::Tensor count_marks_op(at::TensorList weights, at::TensorList masks, int64_t cut) {
  SelectPlan p = plan_of(weights, masks);
  check_cut("count_marks", cut);
  TORCH_CHECK_VALUE(cut >= 0, "count_marks: cut must be a bucket");
  const std::vector<int64_t> in_chunk = count_marks(p, static_cast<int>(cut));
  at::Tensor out = at::zeros({static_cast<int64_t>(weights.size())}, at::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (size_t c = 0; c < in_chunk.size(); ++c) o[p.chunks[c].run] += in_chunk[c];
  return out;
}

// Prunes the first shares[t] marks of bucket `cut` of each tensor t, in position order, and
// resolves every mark with `cut` as the cut bucket.
void clear_first_marks_(at::TensorList weights, at::TensorList masks, int64_t cut,
                        at::IntArrayRef shares) {
  SelectPlan p = plan_of(weights, masks);
  check_cut("clear_first_marks_", cut);
  TORCH_CHECK_VALUE(cut >= 0, "clear_first_marks_: cut must be a bucket");
  TORCH_CHECK_VALUE(shares.size() == weights.size(), "clear_first_marks_: ", shares.size(),
                    " shares for ", weights.size(), " tensors");
  const std::vector<int64_t> in_chunk = count_marks(p, static_cast<int>(cut));
  std::vector<int64_t> left(shares.begin(), shares.end()), total(weights.size(), 0);
  for (size_t c = 0; c < in_chunk.size(); ++c) total[p.chunks[c].run] += in_chunk[c];
  for (size_t t = 0; t < weights.size(); ++t)
    TORCH_CHECK_VALUE(left[t] >= 0 && left[t] <= total[t], "clear_first_marks_: shares[", t,
                      "] = ", left[t], " but the tensor holds ", total[t], " such marks");
  std::vector<int64_t> share(in_chunk.size(), 0);
  for (size_t c = 0; c < in_chunk.size(); ++c) {  // chunks of a tensor are in order
    const int64_t run = p.chunks[c].run;
    share[c] = std::min(left[run], in_chunk[c]);
    left[run] -= share[c];
  }
  clear_first_marks(p, static_cast<int>(cut), in_chunk, share, select_kernels());
}

// Prunes the entries at `positions` (int64 [n, 2]: tensor, element index).
void clear_(at::TensorList weights, at::TensorList masks, const at::Tensor& positions) {
  SelectPlan p = plan_of(weights, masks);
  TORCH_CHECK_VALUE(positions.device().is_cpu() && positions.scalar_type() == at::kLong &&
                        positions.dim() == 2 && positions.size(1) == 2 &&
                        positions.is_contiguous(),
                    "clear_: positions must be a contiguous int64 CPU tensor of shape [n, 2]");
  const int64_t* q = positions.const_data_ptr<int64_t>();
  const int64_t n = positions.size(0);
  for (int64_t j = 0; j < n; ++j) {  // every position checked before any is written
    const int64_t t = q[2 * j], i = q[2 * j + 1];
    TORCH_CHECK_VALUE(t >= 0 && t < static_cast<int64_t>(p.runs.size()) && i >= 0 &&
                          i < p.runs[t].n,
                      "clear_: positions[", j, "] = (", t, ", ", i, ") lies outside the tensors");
  }
  for (int64_t j = 0; j < n; ++j) p.runs[q[2 * j]].m[q[2 * j + 1]] = 0;
}

// What the sharded engine (lth_fast/distributed/marked.py) must agree on with these ops, so
// that it is stated once, here: mark_'s layout, the bucket count, and the one-pass engine's
// sample band (one_pass.h, counting.h), which the ranks' shared band estimate follows.
std::tuple<c10::Dict<std::string, int64_t>, c10::Dict<std::string, double>> protocol() {
  c10::Dict<std::string, int64_t> ints;
  ints.insert("mark_alive", kMarkAlive);
  ints.insert("mark_below", kMarkBelowBand);
  ints.insert("mark_in_band", kMarkInBand);
  ints.insert("mark_nan", kMarkNan);
  ints.insert("mark_shift", kMarkShift);
  ints.insert("mark_hist", kMarkHist);
  ints.insert("mark_buckets", simd::kMarkBuckets);
  ints.insert("sample_block", kSampleBlock);
  ints.insert("min_sample_keys", kMinSampleKeys);
  c10::Dict<std::string, double> floats;
  floats.insert("band_sigmas", kBandSigmas);
  floats.insert("band_extra_ranks", kBandExtraRanks);
  return {std::move(ints), std::move(floats)};
}

}  // namespace

TORCH_LIBRARY(lth_fast_shard, m) {
  // The constants the sharded engine shares with these ops (see protocol above): ints
  // mark_alive, mark_below, mark_in_band, mark_nan, mark_shift, mark_hist (indices into
  // mark_'s output), mark_buckets, sample_block, min_sample_keys; floats band_sigmas,
  // band_extra_ranks.
  m.def("protocol() -> (Dict(str, int), Dict(str, float))", &protocol);
  m.def("sample(Tensor[] weights, Tensor[] masks, int blocks) -> Tensor");
  m.def("mark_(Tensor[] weights, Tensor(a!)[] masks, int lo, int hi) -> Tensor");
  m.def("resolve_(Tensor[] weights, Tensor(a!)[] masks, int cut, int below_value, int cap) "
        "-> Tensor");
  m.def("count_marks(Tensor[] weights, Tensor[] masks, int cut) -> Tensor");
  m.def("clear_first_marks_(Tensor[] weights, Tensor(a!)[] masks, int cut, int[] shares) -> ()");
  m.def("clear_(Tensor[] weights, Tensor(a!)[] masks, Tensor positions) -> ()");
}

TORCH_LIBRARY_IMPL(lth_fast_shard, CPU, m) {
  m.impl("sample", &sample);
  m.impl("mark_", &mark_);
  m.impl("resolve_", &resolve_);
  m.impl("count_marks", &count_marks_op);
  m.impl("clear_first_marks_", &clear_first_marks_);
  m.impl("clear_", &clear_);
}

}  // namespace lth_fast::cpu
