#include "cpu/select/one_pass.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>

namespace lth_fast::cpu {
namespace {

// A sample of one block of 16 per 8192 entries (1K to 16K keys) and a 3-sigma band: a few
// percent of the alive entries fall in the band, which the marking pass handles without a
// branch, so the band costs little while the sample's gathers and selection are a fixed cost
// of every call; a miss (rare) costs an undo and the counting engine.
constexpr double kBandSigmas = 3.0;
int64_t sample_blocks(const std::vector<Run>& runs) {
  int64_t total = 0;
  for (const Run& r : runs) total += r.n;
  return std::clamp<int64_t>(total / 8192, 64, 1024);
}

}  // namespace

void mark_pass(SelectPlan& p, const simd::SelectKernels& kern) {
  band_pass(p, simd::kMarkBuckets, [&](const Chunk& ch, int64_t* hist, simd::BandCount* bc) {
    kern.mark(p.dtype, chunk_weights(p, ch), p.runs[ch.run].m + ch.start, ch.len, p.lo, p.hi,
              p.shift, hist, bc);
  });
}

std::vector<int64_t> count_marks(const SelectPlan& p, int cut) {
  const uint8_t mark = static_cast<uint8_t>(2 + cut);
  const int64_t chunks = static_cast<int64_t>(p.chunks.size());
  std::vector<int64_t> in_chunk(chunks, 0);
  at::parallel_for(0, chunks, chunk_grain(p.chunks), [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const uint8_t* m = p.runs[p.chunks[c].run].m + p.chunks[c].start;
      int64_t n = 0;
      for (int64_t i = 0; i < p.chunks[c].len; ++i) n += m[i] == mark;  // vectorized
      in_chunk[c] = n;
    }
  });
  return in_chunk;
}

void clear_first_marks(SelectPlan& p, int cut, const std::vector<int64_t>& in_chunk,
                       const std::vector<int64_t>& share, const simd::SelectKernels& kern) {
  const uint8_t mark = static_cast<uint8_t>(2 + cut);
  at::parallel_for(0, static_cast<int64_t>(p.chunks.size()), chunk_grain(p.chunks),
                   [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      uint8_t* m = p.runs[p.chunks[c].run].m + p.chunks[c].start;
      const int64_t len = p.chunks[c].len;
      if (share[c] == in_chunk[c]) {
        for (int64_t i = 0; i < len; ++i) m[i] = m[i] == mark ? 0 : m[i];  // vectorized
      } else {
        for (int64_t i = 0, done = 0; i < len && done < share[c]; ++i)
          if (m[i] == mark) {
            m[i] = 0;
            ++done;
          }
      }
      kern.resolve(m, len, cut, 0, nullptr, 0);
    }
  });
}

namespace {

// For a cut bucket of one key (shift 0) too crowded to collect: its entries tie, so the first
// r of them by position are pruned. A count of the bucket's marks per chunk (a read of the
// masks alone) gives each chunk its share; a chunk's share of marks becomes dead marks (0)
// first, then the chunk resolves as usual (the rest of the bucket stays).
void resolve_ties(SelectPlan& p, int cut, int64_t r, const simd::SelectKernels& kern) {
  const std::vector<int64_t> in_chunk = count_marks(p, cut);
  std::vector<int64_t> share(in_chunk.size(), 0);
  for (size_t c = 0, left = r; c < in_chunk.size() && left > 0; ++c) {
    share[c] = std::min<int64_t>(left, in_chunk[c]);
    left -= share[c];
  }
  clear_first_marks(p, cut, in_chunk, share, kern);
}

}  // namespace

// Resolves every mask byte (see simd::ResolveFn); returns the packed positions of the entries
// of bucket `cut` when they number at most `cap`.
std::vector<int64_t> resolve_pass(SelectPlan& p, int cut, uint8_t below_value, int64_t cap,
                                  const simd::SelectKernels& kern) {
  const int threads = at::get_num_threads();
  std::vector<std::vector<int64_t>> found(threads, std::vector<int64_t>(cap));
  std::vector<int64_t> used(threads, 0);
  at::parallel_for(0, static_cast<int64_t>(p.chunks.size()), chunk_grain(p.chunks),
                   [&](int64_t b, int64_t e) {
    const int t = at::get_thread_num();
    for (int64_t c = b; c < e; ++c) {
      const Chunk& ch = p.chunks[c];
      int64_t* out = found[t].data() + used[t];
      const int64_t n = kern.resolve(p.runs[ch.run].m + ch.start, ch.len, cut, below_value, out,
                                     cap - used[t]);
      const int64_t kept = std::min(n, cap - used[t]);
      for (int64_t j = 0; j < kept; ++j) out[j] |= c << 16;
      used[t] += kept;
    }
  });
  return gather(found, used);
}

SelectPlan mark_selection(simd::DType dtype, std::vector<Run> runs, double amount, bool by_count,
                          const simd::SelectKernels& kern) {
  SelectPlan p;
  p.dtype = dtype;
  p.runs = std::move(runs);
  p.chunks = make_chunks(p.runs);
  band_from_sample(p, amount, by_count, kBandSigmas, sample_blocks(p.runs));
  mark_pass(p, kern);
  return p;
}

void unmark_selection(SelectPlan& p, const simd::SelectKernels& kern) {
  resolve_pass(p, -1, 1, 0, kern);
}

SelectResult finish_selection(SelectPlan& p, double amount, bool by_count,
                              const simd::SelectKernels& kern) {
  if (p.k == 0) {
    unmark_selection(p, kern);
    return {p.alive, 0, std::numeric_limits<double>::quiet_NaN()};
  }
  if (p.below >= p.k || p.below + p.in_range < p.k) {  // the sample's band missed the k-th
    unmark_selection(p, kern);
    SelectPlan q = plan_selection(p.dtype, p.runs, amount, by_count, kern);
    q.k = p.k;
    return apply_selection(q, kern);
  }
  int cut = 0;
  int64_t before = p.below;
  while (before + p.hist[cut] < p.k) before += p.hist[cut++];
  const int64_t r = p.k - before, in_cut = p.hist[cut];
  if (in_cut <= kCollectCap || (p.shift == 0 && r <= kCollectCap)) {
    // The cut bucket's entries are collected and the r smallest by (key, position) pruned.
    // A crowded bucket of one key is a tie cut by position: collecting its first r is
    // enough, as each thread keeps the first entries it meets, in chunk order.
    const int64_t cap = in_cut <= kCollectCap ? in_cut : r;
    const std::vector<int64_t> pending = resolve_pass(p, cut, 0, cap, kern);
    return {p.alive, p.k, clear_smallest(p, pending, r)};
  }
  if (p.shift == 0) {  // a tie too large to collect: its first r by counts per chunk
    resolve_ties(p, cut, r, kern);
    return {p.alive, p.k, simd::key_to_double(p.dtype, p.lo + static_cast<uint64_t>(cut))};
  }
  // A crowded bucket of several keys: everything below it is pruned now; the counting engine
  // prunes the remaining r among the bucket's key range, all other entries being settled.
  resolve_pass(p, cut, 0, 0, kern);
  SelectPlan q;
  q.dtype = p.dtype;
  q.runs = p.runs;
  q.chunks = p.chunks;
  q.alive = p.alive - before;
  q.k = r;
  q.lo = p.lo + (static_cast<uint64_t>(cut) << p.shift);
  q.hi = std::min(p.hi, q.lo + (uint64_t(1) << p.shift));
  q.below = 0;
  q.in_range = in_cut;
  const SelectResult rest = apply_selection(q, kern);
  return {p.alive, p.k, rest.threshold};
}

}  // namespace lth_fast::cpu
