// The counting engine: exact k-smallest-magnitude selection over a list of tensors, without
// concatenating them. prune_ runs the one-pass engine (select/one_pass.h) and falls back on
// this one when that engine's sample band misses; both share the plan and helpers below.
//
// plan_selection reads only: it samples ~16K entries to guess a key band [lo, hi) around the
// k-th smallest alive key, then one counting pass over every tensor counts the alive entries,
// those below lo, and a 4096-bucket histogram of those inside the band, and narrows the band
// to the one bucket that holds the k-th. apply_selection writes: it narrows further only if
// that bucket is crowded (ties, or a sample that missed), then one writing pass clears every
// alive mask below the bucket and collects the few alive entries inside it, and an exact
// selection among those (by key, then position) clears the rest of the k.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/simd/select.h"

namespace lth_fast::cpu {

// Most entries of a cut bucket one process holds for the exact selection by (key, position);
// a more crowded bucket is narrowed, or (one tied key) cut by position from counts.
constexpr int64_t kCollectCap = int64_t(1) << 14;

// The sample band (band_from_sample), shared by both engines and, through
// lth_fast_shard::protocol, the sharded one: keys of the alive entries of blocks of
// kSampleBlock neighbours; the band spans z standard deviations of the k-th entry's sample
// rank either side plus kBandExtraRanks ranks (neighbours correlate, so the binomial spread
// alone understates the error); fewer than kMinSampleKeys keys give the whole key range.
constexpr int64_t kSampleBlock = 16;
constexpr double kBandExtraRanks = 32.0;
constexpr int64_t kMinSampleKeys = 64;

struct Run {  // one tensor: its weights, its bool mask, its index in the caller's list
  const void* w;
  uint8_t* m;
  int64_t n;
  int64_t index;
};

struct SelectPlan {
  simd::DType dtype;
  std::vector<Run> runs;
  std::vector<Chunk> chunks;
  int64_t alive = 0;
  int64_t k = 0;          // how many to prune; set by the caller from alive
  int64_t nan_index = -1; // index of the first run holding a NaN, or -1
  // The k-th smallest alive key lies in [lo, hi); `below` alive keys are < lo, `in_range`
  // alive keys are inside (-1: not counted yet).
  uint64_t lo = 0, hi = 0;
  int64_t below = 0, in_range = -1;
  std::vector<int64_t> hist;  // counts over [lo, hi) by (key - lo) >> shift, if counted
  int shift = 0;
};

inline const void* chunk_weights(const SelectPlan& p, const Chunk& ch) {
  const int64_t size = simd::key_bytes(p.dtype);
  return static_cast<const char*>(p.runs[ch.run].w) + ch.start * size;
}

struct SelectResult {
  int64_t alive, pruned;
  double threshold;  // largest pruned magnitude; NaN when nothing was pruned
};

std::vector<Chunk> make_chunks(const std::vector<Run>& runs);
// The keys of the alive entries among `blocks` evenly spaced blocks of kSampleBlock neighbours
// across the runs (in block order); *seen: how many entries the blocks cover, alive or not.
std::vector<uint64_t> sample_keys(const SelectPlan& p, int64_t blocks, int64_t* seen);
// Guesses [lo, hi) around the k-th smallest alive key from `blocks` evenly spaced blocks of
// kSampleBlock entries, z standard deviations of the sample's rank either side plus
// kBandExtraRanks; a list of fewer than min_total entries gets the whole key range.
// `amount` as for plan_selection.
void band_from_sample(SelectPlan& p, double amount, bool by_count, double z, int64_t blocks,
                      int64_t min_total);
// One read of every chunk in one parallel region: count_chunk(chunk, this thread's histogram
// of `buckets` entries, counts) adds what it found; the pass sets p.shift (so the band
// [p.lo, p.hi) spans at most `buckets` buckets) first, and after it alive, below, in_range,
// hist and nan_index.
using ChunkCounter = std::function<void(const Chunk&, int64_t*, simd::BandCount*)>;
void band_pass(SelectPlan& p, int buckets, const ChunkCounter& count_chunk);
// The same pass over several plans' chunks in one parallel region (scope="layer": a plan a
// tensor); count_chunk also gets the index of the chunk's plan.
using PlanChunkCounter =
    std::function<void(size_t, const Chunk&, int64_t*, simd::BandCount*)>;
void band_pass(const std::vector<SelectPlan*>& plans, int buckets,
               const PlanChunkCounter& count_chunk);
// Every chunk of `plans` as (plan index, chunk index), plans in order, and the parallel grain
// over them (all in one thread below kSerialBelow elements in all).
struct PlanChunk {
  size_t plan;
  int64_t chunk;
};
std::vector<PlanChunk> plan_chunks(const std::vector<SelectPlan*>& plans, int64_t* grain);
// fn(thread, plan index, chunk index) for every chunk of `plans` in one parallel region; each
// thread gets one contiguous run of them, in order.
template <typename F>
void for_each_plan_chunk(const std::vector<SelectPlan*>& plans, F&& fn) {
  int64_t grain = 1;
  const std::vector<PlanChunk> items = plan_chunks(plans, &grain);
  at::parallel_for(0, static_cast<int64_t>(items.size()), grain, [&](int64_t b, int64_t e) {
    const int t = at::get_thread_num();
    for (int64_t i = b; i < e; ++i) fn(t, items[i].plan, items[i].chunk);
  });
}
// Concatenates per-thread lists of packed positions (chunk << 16 | index in chunk).
std::vector<int64_t> gather(const std::vector<std::vector<int64_t>>& found,
                            const std::vector<int64_t>& used);
// Clears the masks of the r smallest (key, position) among `packed`; returns the largest key
// cleared, as a magnitude.
double clear_smallest(SelectPlan& p, const std::vector<int64_t>& packed, int64_t r);

// Counting pass; fills alive, nan_index and the band. Reads only. `amount` is a fraction of
// the alive entries, or with by_count a number of them: it only aims the sample's band.
SelectPlan plan_selection(simd::DType dtype, std::vector<Run> runs, double amount, bool by_count,
                          const simd::SelectKernels& kern);
// Narrows the band to the bucket holding the k-th smallest (plan.k must be set, 0 < k <= alive).
void narrow(SelectPlan& plan);
// Prunes plan.k entries and says what was done.
SelectResult apply_selection(SelectPlan& plan, const simd::SelectKernels& kern);

}  // namespace lth_fast::cpu
