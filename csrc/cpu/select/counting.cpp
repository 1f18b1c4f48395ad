#include "cpu/select/counting.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/simd/prefetch.h"

namespace lth_fast::cpu {
namespace {

constexpr int kBuckets = 4096;
// The counting engine's own sample (it runs after the one-pass engine's band missed, so its
// band is wider): kRecountBlocks blocks, kRecountSigmas; a list of fewer than kRecountFrom
// entries counts the whole key range.
constexpr double kRecountSigmas = 6.0;
constexpr int64_t kRecountBlocks = 1024;
constexpr int64_t kRecountFrom = int64_t(1) << 17;

// The keys of the alive entries among w[start, start + len) into out; returns how many.
template <typename Bits>
int64_t sample_typed(const Bits* w, const uint8_t* m, int64_t start, int64_t len, uint64_t* out) {
  constexpr Bits abs_mask = static_cast<Bits>(static_cast<Bits>(~Bits(0)) >> 1);  // no int promotion
  int64_t got = 0;
  for (int64_t j = start; j < start + len; ++j) {  // no branch: a fifth of the entries are dead
    out[got] = w[j] & abs_mask;
    got += m[j] != 0;
  }
  return got;
}

int64_t sample_block(simd::DType t, const void* w, const uint8_t* m, int64_t start, int64_t len,
                     uint64_t* out) {
  switch (t) {
    case simd::DType::f32: return sample_typed(static_cast<const uint32_t*>(w), m, start, len, out);
    case simd::DType::f64: return sample_typed(static_cast<const uint64_t*>(w), m, start, len, out);
    default: return sample_typed(static_cast<const uint16_t*>(w), m, start, len, out);
  }
}

// The rank-th smallest of keys below 2^bits, given their histogram over the top 11 bits:
// only the keys of the one bucket holding that rank are selected among (a comparison select
// over all of them would mispredict a branch on most comparisons).
template <typename K>
K rank_of(const std::vector<K>& keys, const std::vector<int64_t>& hist, int shift, int64_t rank,
          std::vector<K>& scratch) {
  int64_t b = 0, before = 0;
  while (before + hist[b] <= rank) before += hist[b++];
  scratch.resize(keys.size());
  size_t got = 0;
  for (const K k : keys) {  // branch-free append of the bucket's keys
    scratch[got] = k;
    got += static_cast<size_t>((k >> shift) == static_cast<K>(b));
  }
  std::nth_element(scratch.begin(), scratch.begin() + (rank - before), scratch.begin() + got);
  return scratch[rank - before];
}

// lo = keys[lo_rank] and hi = keys[hi_rank] + 1 of the sorted keys, where those ranks exist:
// the band [lo, hi) holds both keys, so a tie at the upper rank lies inside it.
template <typename K>
void sample_ranks(const std::vector<K>& keys, int key_bits, double lo_rank, double hi_rank,
                  uint64_t* lo, uint64_t* hi) {
  const int shift = key_bits - 11;
  std::vector<int64_t> hist(2048, 0);
  for (const K k : keys) ++hist[k >> shift];
  std::vector<K> scratch;
  if (lo_rank > 0) *lo = rank_of(keys, hist, shift, static_cast<int64_t>(lo_rank), scratch);
  if (hi_rank < static_cast<double>(keys.size()))
    *hi = rank_of(keys, hist, shift, static_cast<int64_t>(hi_rank), scratch) + 1;  // inclusive
}

}  // namespace

std::vector<Chunk> make_chunks(const std::vector<Run>& runs) {
  std::vector<int64_t> sizes;
  for (const Run& r : runs) sizes.push_back(r.n);
  return chunks_of(sizes);
}

std::vector<uint64_t> sample_keys(const SelectPlan& p, int64_t blocks, int64_t* seen) {
  int64_t total = 0;
  std::vector<int64_t> offsets;
  for (const Run& r : p.runs) {
    offsets.push_back(total);
    total += r.n;
  }
  *seen = 0;
  if (total == 0 || blocks <= 0) return {};
  // Blocks of neighbours, read in parallel, each into its own slots of one array (no
  // per-thread copies), then packed; the ranks taken from them do not depend on the order.
  std::vector<uint64_t> keys(static_cast<size_t>(blocks) * kSampleBlock);
  std::vector<int32_t> alive_in(blocks), len_of(blocks);
  const int64_t size = simd::key_bytes(p.dtype);
  struct Block {
    const Run* run;
    int64_t start, len;
  };
  auto block = [&](int64_t b) {
    // total * b / blocks, without a 128-bit division where the product fits in 64 bits
    const int64_t pos = total <= std::numeric_limits<int64_t>::max() / blocks
                            ? total * b / blocks
                            : static_cast<int64_t>(static_cast<__int128>(total) * b / blocks);
    const int64_t r = std::upper_bound(offsets.begin(), offsets.end(), pos) - offsets.begin() - 1;
    const int64_t start = pos - offsets[r];
    return Block{&p.runs[r], start, std::min(kSampleBlock, p.runs[r].n - start)};
  };
  // Blocks of a large list lie far apart, each a miss to memory: the lines of the block
  // kAhead places on are asked for before this one is read, so several misses are in flight.
  constexpr int64_t kAhead = 8;
  auto prefetch = [&](const Block& blk) {
    const char* w = static_cast<const char*>(blk.run->w) + blk.start * size;
    for (int64_t line = 0; line < kSampleBlock * size + 64; line += 64)
      simd::prefetch_ahead_of(w, line);
    simd::prefetch_ahead_of(blk.run->m + blk.start, 0);
  };
  at::parallel_for(0, blocks, 256, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < std::min(b1, b0 + kAhead); ++b) prefetch(block(b));
    for (int64_t b = b0; b < b1; ++b) {
      if (b + kAhead < b1) prefetch(block(b + kAhead));
      const Block blk = block(b);
      alive_in[b] = static_cast<int32_t>(sample_block(p.dtype, blk.run->w, blk.run->m, blk.start,
                                                      blk.len, keys.data() + b * kSampleBlock));
      len_of[b] = static_cast<int32_t>(blk.len);
    }
  });
  size_t used = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    for (int32_t j = 0; j < alive_in[b]; ++j) keys[used++] = keys[b * kSampleBlock + j];
    *seen += len_of[b];
  }
  keys.resize(used);
  return keys;
}

void band_from_sample(SelectPlan& p, double amount, bool by_count, double z, int64_t blocks,
                      int64_t min_total) {
  int64_t total = 0;
  for (const Run& r : p.runs) total += r.n;
  p.lo = 0;
  p.hi = simd::key_end(p.dtype);
  if (total < min_total) return;
  int64_t seen = 0;
  std::vector<uint64_t> keys = sample_keys(p, blocks, &seen);
  const double n = static_cast<double>(keys.size());
  if (static_cast<int64_t>(keys.size()) < kMinSampleKeys) return;
  // A count amount becomes a fraction of the alive entries this sample estimates.
  double f = by_count ? amount / (total * n / seen) : amount;
  f = std::min(1.0, std::max(0.0, f));
  const double margin = z * std::sqrt(n * f * (1.0 - f)) + kBandExtraRanks;
  const double lo_rank = std::floor(f * n - margin), hi_rank = std::ceil(f * n + margin);
  const int key_bits = p.dtype == simd::DType::f64 ? 63 : p.dtype == simd::DType::f32 ? 31 : 15;
  if (p.dtype == simd::DType::f64) {
    sample_ranks(keys, key_bits, lo_rank, hi_rank, &p.lo, &p.hi);
  } else {  // 32-bit keys: half the bytes to move in the selection
    const std::vector<uint32_t> narrow(keys.begin(), keys.end());
    sample_ranks(narrow, key_bits, lo_rank, hi_rank, &p.lo, &p.hi);
  }
  if (p.hi <= p.lo) p.hi = p.lo + 1;
}

namespace {

// Counting pass over [p.lo, p.hi): alive, below, in_range, hist, nan_index.
void count(SelectPlan& p, const simd::SelectKernels& kern) {
  band_pass(p, kBuckets, [&](const Chunk& ch, int64_t* hist, simd::BandCount* bc) {
    kern.count_band(p.dtype, chunk_weights(p, ch), p.runs[ch.run].m + ch.start, ch.len, p.lo,
                    p.hi, p.shift, hist, bc);
  });
}

// Clears the masks of the first `limit` alive entries of w[0, n) with key == v, in order; with
// limit >= their count, all of them, in a loop without a branch (which the compiler vectorizes).
template <typename Bits>
void clear_key(const Bits* w, uint8_t* m, int64_t n, uint64_t v, int64_t limit, int64_t count) {
  constexpr Bits abs_mask = static_cast<Bits>(static_cast<Bits>(~Bits(0)) >> 1);
  const Bits key = static_cast<Bits>(v);
  if (limit >= count) {
    for (int64_t i = 0; i < n; ++i) m[i] &= static_cast<uint8_t>((w[i] & abs_mask) != key);
    return;
  }
  for (int64_t i = 0, done = 0; i < n && done < limit; ++i)
    if (m[i] && (w[i] & abs_mask) == key) {
      m[i] = 0;
      ++done;
    }
}

// Clears the masks of the first `r` alive entries with key == v, in position order, walking
// chunks in order with their counts of such entries. Used when one tied key holds too many
// entries to collect.
void clear_ties(SelectPlan& p, uint64_t v, int64_t r, const std::vector<int64_t>& per_chunk) {
  int64_t c = 0, before = 0;
  while (before + per_chunk[c] < r) before += per_chunk[c++];
  auto clear = [&](int64_t ci, int64_t limit) {
    const Chunk& ch = p.chunks[ci];
    uint8_t* m = p.runs[ch.run].m + ch.start;
    const void* w = chunk_weights(p, ch);
    switch (p.dtype) {
      case simd::DType::f32:
        return clear_key(static_cast<const uint32_t*>(w), m, ch.len, v, limit, per_chunk[ci]);
      case simd::DType::f64:
        return clear_key(static_cast<const uint64_t*>(w), m, ch.len, v, limit, per_chunk[ci]);
      default:
        return clear_key(static_cast<const uint16_t*>(w), m, ch.len, v, limit, per_chunk[ci]);
    }
  };
  at::parallel_for(0, c, 1, [&](int64_t b, int64_t e) {
    for (int64_t ci = b; ci < e; ++ci)
      if (per_chunk[ci]) clear(ci, per_chunk[ci]);
  });
  clear(c, r - before);
}

}  // namespace

std::vector<PlanChunk> plan_chunks(const std::vector<SelectPlan*>& plans, int64_t* grain) {
  std::vector<PlanChunk> items;
  int64_t total = 0;
  for (size_t q = 0; q < plans.size(); ++q)
    for (size_t c = 0; c < plans[q]->chunks.size(); ++c) {
      items.push_back({q, static_cast<int64_t>(c)});
      total += plans[q]->chunks[c].len;
    }
  *grain = total < kSerialBelow ? std::max<int64_t>(1, static_cast<int64_t>(items.size())) : 1;
  return items;
}

void band_pass(const std::vector<SelectPlan*>& plans, int buckets,
               const PlanChunkCounter& count_chunk) {
  for (SelectPlan* p : plans) {
    p->shift = 0;
    while (((p->hi - p->lo - 1) >> p->shift) >= static_cast<uint64_t>(buckets)) ++p->shift;
  }
  const int threads = at::get_num_threads();
  const size_t n = plans.size();
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  // Per thread and plan: a histogram (allocated when the thread first meets the plan: a
  // thread's chunks are one contiguous run of plans), counts, the first chunk with a NaN.
  std::vector<std::vector<std::vector<int64_t>>> hists(threads,
                                                       std::vector<std::vector<int64_t>>(n));
  std::vector<std::vector<simd::BandCount>> counts(threads, std::vector<simd::BandCount>(n));
  std::vector<std::vector<int64_t>> nan_chunk(threads, std::vector<int64_t>(n, kNone));
  for_each_plan_chunk(plans, [&](int t, size_t q, int64_t c) {
    std::vector<int64_t>& hist = hists[t][q];
    if (hist.empty()) hist.assign(buckets, 0);
    simd::BandCount bc;
    count_chunk(q, plans[q]->chunks[c], hist.data(), &bc);
    counts[t][q].alive += bc.alive;
    counts[t][q].below += bc.below;
    counts[t][q].in_band += bc.in_band;
    if (bc.has_nan) nan_chunk[t][q] = std::min(nan_chunk[t][q], c);
  });
  for (size_t q = 0; q < n; ++q) {
    SelectPlan& p = *plans[q];
    p.hist.assign(buckets, 0);
    p.alive = p.below = p.in_range = 0;
    int64_t first_nan = kNone;
    for (int t = 0; t < threads; ++t) {
      for (size_t b = 0; b < hists[t][q].size(); ++b) p.hist[b] += hists[t][q][b];
      p.alive += counts[t][q].alive;
      p.below += counts[t][q].below;
      p.in_range += counts[t][q].in_band;
      first_nan = std::min(first_nan, nan_chunk[t][q]);
    }
    p.nan_index = first_nan == kNone ? -1 : p.runs[p.chunks[first_nan].run].index;
  }
}

void band_pass(SelectPlan& p, int buckets, const ChunkCounter& count_chunk) {
  band_pass({&p}, buckets, [&](size_t, const Chunk& ch, int64_t* hist, simd::BandCount* bc) {
    count_chunk(ch, hist, bc);
  });
}

std::vector<int64_t> gather(const std::vector<std::vector<int64_t>>& found,
                            const std::vector<int64_t>& used) {
  std::vector<int64_t> all;
  for (size_t t = 0; t < found.size(); ++t)
    all.insert(all.end(), found[t].begin(), found[t].begin() + used[t]);
  return all;
}

double clear_smallest(SelectPlan& p, const std::vector<int64_t>& packed, int64_t r) {
  std::vector<std::pair<uint64_t, int64_t>> band;  // (key, packed position)
  band.reserve(packed.size());
  const int64_t size = simd::key_bytes(p.dtype);
  auto weight = [&](int64_t pos) {
    const Chunk& ch = p.chunks[pos >> 16];
    return static_cast<const char*>(p.runs[ch.run].w) + (ch.start + (pos & 0xFFFF)) * size;
  };
  constexpr size_t kAhead = 16;  // the entries lie anywhere: keep several misses in flight
  for (size_t j = 0; j < std::min(kAhead, packed.size()); ++j)
    simd::prefetch_ahead_of(weight(packed[j]), 0);
  for (size_t j = 0; j < packed.size(); ++j) {
    if (j + kAhead < packed.size()) simd::prefetch_ahead_of(weight(packed[j + kAhead]), 0);
    const Chunk& ch = p.chunks[packed[j] >> 16];
    band.emplace_back(simd::key_at(p.dtype, p.runs[ch.run].w, ch.start + (packed[j] & 0xFFFF)),
                      packed[j]);
  }
  std::nth_element(band.begin(), band.begin() + (r - 1), band.end());
  uint64_t cut = 0;
  for (int64_t j = 0; j < r; ++j) {  // after nth_element the first r are the r smallest
    const Chunk& ch = p.chunks[band[j].second >> 16];
    p.runs[ch.run].m[ch.start + (band[j].second & 0xFFFF)] = 0;
    cut = std::max(cut, band[j].first);
  }
  return simd::key_to_double(p.dtype, cut);
}

SelectPlan plan_selection(simd::DType dtype, std::vector<Run> runs, double amount,
                          bool by_count, const simd::SelectKernels& kern) {
  SelectPlan p;
  p.dtype = dtype;
  p.runs = std::move(runs);
  p.chunks = make_chunks(p.runs);
  // Blocks of neighbours are correlated, so the margin is generous: a miss costs a pass, a
  // wide band only a little histogram work.
  band_from_sample(p, amount, by_count, kRecountSigmas, kRecountBlocks, kRecountFrom);
  count(p, kern);
  return p;
}

void narrow(SelectPlan& p) {
  if (p.below >= p.k) {  // the sample's band was too high
    p.hi = p.lo;
    p.lo = 0;
    p.below = 0;
    p.in_range = -1;
    p.hist.clear();
  } else if (p.below + p.in_range < p.k) {  // too low
    p.below += p.in_range;
    p.lo = p.hi;
    p.hi = simd::key_end(p.dtype);
    p.in_range = -1;
    p.hist.clear();
  }
  if (p.hist.empty()) return;
  int64_t before = p.below;
  for (int b = 0; b < kBuckets; ++b) {
    if (before + p.hist[b] >= p.k) {
      const uint64_t lo = p.lo + (static_cast<uint64_t>(b) << p.shift);
      p.hi = std::min(p.hi, lo + (uint64_t(1) << p.shift));
      p.lo = lo;
      p.below = before;
      p.in_range = p.hist[b];
      break;
    }
    before += p.hist[b];
  }
  p.hist.clear();
}

SelectResult apply_selection(SelectPlan& p, const simd::SelectKernels& kern) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (p.k == 0) return {p.alive, 0, nan};
  narrow(p);
  while ((p.in_range < 0 || p.in_range > kCollectCap) && p.hi - p.lo > 1) {
    count(p, kern);
    narrow(p);
  }
  if (p.in_range < 0) {  // a single key never counted on its own
    count(p, kern);
  }
  const int64_t r = p.k - p.below;  // how many of the in-range entries to prune, >= 1
  const bool collect = p.in_range <= kCollectCap;
  const int threads = at::get_num_threads();
  const int64_t cap = collect ? p.in_range : 0;
  std::vector<std::vector<int64_t>> found(threads, std::vector<int64_t>(cap));
  std::vector<int64_t> used(threads, 0), per_chunk(p.chunks.size(), 0);
  at::parallel_for(0, static_cast<int64_t>(p.chunks.size()), chunk_grain(p.chunks),
                   [&](int64_t b, int64_t e) {
    const int t = at::get_thread_num();
    for (int64_t c = b; c < e; ++c) {
      const Chunk& ch = p.chunks[c];
      const Run& run = p.runs[ch.run];
      int64_t* out = found[t].data() + used[t];
      const int64_t n = kern.cut_below(p.dtype, chunk_weights(p, ch), run.m + ch.start,
                                       ch.len, p.lo, p.hi, out, cap - used[t]);
      per_chunk[c] = n;
      const int64_t kept = std::min(n, cap - used[t]);
      for (int64_t j = 0; j < kept; ++j) out[j] |= c << 16;  // (chunk, index) sorts by position
      used[t] += kept;
    }
  });
  if (!collect) {
    clear_ties(p, p.lo, r, per_chunk);
    return {p.alive, p.k, simd::key_to_double(p.dtype, p.lo)};
  }
  return {p.alive, p.k, clear_smallest(p, gather(found, used), r)};
}

}  // namespace lth_fast::cpu
