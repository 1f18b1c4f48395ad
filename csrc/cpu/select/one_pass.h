// The fast path of magnitude selection: one pass over weights and masks, then one over masks.
//
// mark_selection samples a key band [lo, hi) around the k-th smallest alive key and, in one
// pass, rewrites every mask byte with what it learned (see simd::kMarkBelow): entries below the
// band are marked for pruning, entries inside it get their bucket of a 253-bucket histogram.
// finish_selection then knows the bucket holding the k-th entry and resolves the marks in one
// pass over the masks alone, collecting the few entries of that bucket for an exact selection
// by (key, position). The marks always hold the masks as they were, so unmark_selection undoes
// everything on an error, and a band the sample missed falls back to the counting engine of
// select/counting.h. Extra memory: the sample, the histograms and the one bucket.
#pragma once
#include "cpu/select/counting.h"

namespace lth_fast::cpu {

SelectPlan mark_selection(simd::DType dtype, std::vector<Run> runs, double amount, bool by_count,
                          const simd::SelectKernels& kern);
void unmark_selection(SelectPlan& plan, const simd::SelectKernels& kern);
// plan.k set by the caller, 0 <= k <= alive; `amount` and `by_count` as given to mark_selection.
SelectResult finish_selection(SelectPlan& plan, double amount, bool by_count,
                              const simd::SelectKernels& kern);

// The passes themselves, for callers that choose the band and the cut (the sharded selection
// of select/shard_ops.cpp, whose ranks agree on them between passes).
// Marks every mask byte for the band [plan.lo, plan.hi); sets shift, hist, alive, below,
// in_range and nan_index.
void mark_pass(SelectPlan& plan, const simd::SelectKernels& kern);
// Resolves every mark (see simd::ResolveFn); returns the packed positions (chunk << 16 | index
// in chunk) of the entries of bucket `cut`, when they number at most `cap`.
std::vector<int64_t> resolve_pass(SelectPlan& plan, int cut, uint8_t below_value, int64_t cap,
                                  const simd::SelectKernels& kern);
// Per chunk: how many marks of bucket `cut` it holds.
std::vector<int64_t> count_marks(const SelectPlan& plan, int cut);
// Prunes the first share[c] marks of bucket `cut` in each chunk c (in_chunk: count_marks),
// then resolves every mark with `cut` as the cut bucket (the rest of it stays alive).
void clear_first_marks(SelectPlan& plan, int cut, const std::vector<int64_t>& in_chunk,
                       const std::vector<int64_t>& share, const simd::SelectKernels& kern);

}  // namespace lth_fast::cpu
