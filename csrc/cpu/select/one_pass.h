// The fast path of magnitude selection: one pass over weights and masks, then one over masks.
//
// mark_selections samples, for each ranking (one for scope="global", one a tensor for
// scope="layer"), a key band [lo, hi) around its k-th smallest alive key and, in one pass over
// every ranking's tensors, rewrites every mask byte with what it learned (see
// simd::kMarkBelow): entries below the band are marked for pruning, entries inside it get
// their bucket of a 253-bucket histogram. finish_selections then knows each ranking's bucket
// holding the k-th entry and resolves the marks of all rankings in one pass over the masks
// alone, collecting the few entries of each cut bucket for an exact selection by (key,
// position). The marks always hold the masks as they were, so unmark_selections undoes
// everything on an error, and a band the sample missed falls back to the counting engine of
// select/counting.h. Extra memory: the samples, the histograms and the cut buckets.
#pragma once
#include "cpu/select/counting.h"

namespace lth_fast::cpu {

// The one-pass engine's sample band (see select/one_pass.cpp): kBandSigmas standard
// deviations (with counting.h's kSampleBlock, kBandExtraRanks and kMinSampleKeys; the sharded
// engine reads all four through lth_fast_shard::protocol). A ranking of fewer than
// kSampleFrom entries is not sampled (its band is the whole key range); a larger one samples
// total / kEntriesPerBlock blocks, clamped to [kMinBlocks, kMaxBlocks] (so the clamps bind
// below 512Ki and above 8Mi entries).
constexpr double kBandSigmas = 3.0;
constexpr int64_t kSampleFrom = 4096;  // 64 blocks of 16 at least 64 entries apart
constexpr int64_t kEntriesPerBlock = 8192;
constexpr int64_t kMinBlocks = 64, kMaxBlocks = 1024;

// groups[g]: the runs of ranking g; amounts[g] its amount (a fraction, or with by_count a
// number of entries: it only aims the sample).
std::vector<SelectPlan> mark_selections(simd::DType dtype, std::vector<std::vector<Run>> groups,
                                        const std::vector<double>& amounts, bool by_count,
                                        const simd::SelectKernels& kern);
void unmark_selections(std::vector<SelectPlan>& plans, const simd::SelectKernels& kern);
// Each plan's k set by the caller, 0 <= k <= alive; amounts and by_count as given to
// mark_selections.
std::vector<SelectResult> finish_selections(std::vector<SelectPlan>& plans,
                                            const std::vector<double>& amounts, bool by_count,
                                            const simd::SelectKernels& kern);

// The passes themselves, for callers that choose the band and the cut (the sharded selection
// of select/shard_ops.cpp, whose ranks agree on them between passes).
// Marks every mask byte for the band [plan.lo, plan.hi); sets shift, hist, alive, below,
// in_range and nan_index.
void mark_pass(SelectPlan& plan, const simd::SelectKernels& kern);
// Resolves every mark (see simd::ResolveFn); returns the packed positions (chunk << 16 | index
// in chunk) of the first `cap` entries of bucket `cut`, in position order.
std::vector<int64_t> resolve_pass(SelectPlan& plan, int cut, uint8_t below_value, int64_t cap,
                                  const simd::SelectKernels& kern);
// Per chunk: how many marks of bucket `cut` it holds.
std::vector<int64_t> count_marks(const SelectPlan& plan, int cut);
// Prunes the first share[c] marks of bucket `cut` in each chunk c (in_chunk: count_marks),
// then resolves every mark with `cut` as the cut bucket (the rest of it stays alive).
void clear_first_marks(SelectPlan& plan, int cut, const std::vector<int64_t>& in_chunk,
                       const std::vector<int64_t>& share, const simd::SelectKernels& kern);

}  // namespace lth_fast::cpu
