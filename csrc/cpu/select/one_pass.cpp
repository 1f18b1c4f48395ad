#include "cpu/select/one_pass.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <optional>

namespace lth_fast::cpu {
namespace {

// A sample of one block of kSampleBlock per kEntriesPerBlock entries (kMinBlocks to
// kMaxBlocks blocks: 1K to 16K keys) and a kBandSigmas band: a few percent of the alive
// entries fall in the band, which the marking pass handles without a branch, so the band costs
// little while the sample's gathers and selection are a fixed cost of every call; a miss (rare)
// costs an undo and the counting engine. A ranking of fewer than kSampleFrom entries takes the
// whole key range (every alive entry in the band; its cut bucket can always be collected); a
// larger one is sampled, however small, since a band of every entry costs a histogram count
// per entry (a third of a ResNet-20's time in layer scope).
int64_t sample_blocks(const std::vector<Run>& runs) {
  int64_t total = 0;
  for (const Run& r : runs) total += r.n;
  return std::clamp<int64_t>(total / kEntriesPerBlock, kMinBlocks, kMaxBlocks);
}

// What one resolving pass does to a plan's marks (see simd::ResolveFn), and how many entries
// of its cut bucket it collects.
struct ResolveSpec {
  int cut;
  uint8_t below_value;
  int64_t cap;
};

// One resolving pass over several plans in one parallel region; per plan, the packed
// positions (chunk << 16 | index in chunk) of the first spec.cap entries of its cut bucket,
// in position order: a thread's chunks are one contiguous, ordered run of the list, so each
// thread keeping the first entries it meets keeps the first of every plan.
std::vector<std::vector<int64_t>> resolve_passes(const std::vector<SelectPlan*>& plans,
                                                 const std::vector<ResolveSpec>& specs,
                                                 const simd::SelectKernels& kern) {
  const int threads = at::get_num_threads();
  const size_t n = plans.size();
  // Per plan and thread: the entries found, and how many of them are kept.
  std::vector<std::vector<std::vector<int64_t>>> found(n,
                                                       std::vector<std::vector<int64_t>>(threads));
  std::vector<std::vector<int64_t>> used(n, std::vector<int64_t>(threads, 0));
  for_each_plan_chunk(plans, [&](int t, size_t q, int64_t c) {
    const SelectPlan& p = *plans[q];
    const ResolveSpec& s = specs[q];
    const Chunk& ch = p.chunks[c];
    std::vector<int64_t>& out = found[q][t];
    int64_t& u = used[q][t];
    // Room for every entry the chunk may add, up to the cap: a thread holds no more than the
    // entries it met (twice that at most, as the buffer doubles), whatever the cap.
    const int64_t room = std::min(s.cap, u + ch.len);
    if (static_cast<int64_t>(out.size()) < room)
      out.resize(std::min(s.cap, std::max<int64_t>(room, 2 * static_cast<int64_t>(out.size()))));
    const int64_t got = kern.resolve(p.runs[ch.run].m + ch.start, ch.len, s.cut, s.below_value,
                                     out.data() + u, room - u);
    const int64_t kept = std::min(got, s.cap - u);
    for (int64_t j = 0; j < kept; ++j) out[u + j] |= c << 16;
    u += kept;
  });
  std::vector<std::vector<int64_t>> all(n);
  for (size_t q = 0; q < n; ++q) {
    all[q] = gather(found[q], used[q]);
    all[q].resize(std::min<int64_t>(static_cast<int64_t>(all[q].size()), specs[q].cap));
  }
  return all;
}

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

// How a marked plan is finished.
struct Finish {
  enum Kind {
    none,     // k == 0: undo the marks
    recount,  // the band missed the k-th entry: undo, then the counting engine
    collect,  // collect the cut bucket (all of it, or the first r of a tie) and cut it exactly
    ties,     // a tie too large to collect: cut by counts per chunk (passes of its own)
    crowded,  // a crowded bucket of several keys: the counting engine within it
  } kind;
  int cut = -1;
  int64_t r = 0, before = 0, in_cut = 0;
};

Finish finish_of(const SelectPlan& p) {
  if (p.k == 0) return {Finish::none};
  if (p.below >= p.k || p.below + p.in_range < p.k) return {Finish::recount};
  Finish f{Finish::collect};
  int cut = 0;
  int64_t before = p.below;
  while (before + p.hist[cut] < p.k) before += p.hist[cut++];
  f.cut = cut;
  f.before = before;
  f.r = p.k - before;
  f.in_cut = p.hist[f.cut];
  // A crowded bucket of one key is a tie cut by position: its first r are enough.
  if (f.in_cut > kCollectCap && !(p.shift == 0 && f.r <= kCollectCap))
    f.kind = p.shift == 0 ? Finish::ties : Finish::crowded;
  return f;
}

// The plan's part of the shared resolving pass; none for a tie that resolves on its own.
std::optional<ResolveSpec> resolve_spec(const Finish& f) {
  switch (f.kind) {
    case Finish::none:
    case Finish::recount: return ResolveSpec{-1, 1, 0};
    case Finish::collect:
      return ResolveSpec{f.cut, 0, f.in_cut <= kCollectCap ? f.in_cut : f.r};
    case Finish::crowded: return ResolveSpec{f.cut, 0, 0};
    default: return std::nullopt;
  }
}

// After the shared resolving pass: what is left of finishing the plan.
SelectResult complete(SelectPlan& p, const Finish& f, const std::vector<int64_t>& pending,
                      double amount, bool by_count, const simd::SelectKernels& kern) {
  switch (f.kind) {
    case Finish::none: return {p.alive, 0, std::numeric_limits<double>::quiet_NaN()};
    case Finish::recount: {
      SelectPlan q = plan_selection(p.dtype, p.runs, amount, by_count, kern);
      q.k = p.k;
      return apply_selection(q, kern);
    }
    case Finish::collect: return {p.alive, p.k, clear_smallest(p, pending, f.r)};
    case Finish::ties:
      resolve_ties(p, f.cut, f.r, kern);
      return {p.alive, p.k, simd::key_to_double(p.dtype, p.lo + static_cast<uint64_t>(f.cut))};
    default: break;
  }
  // A crowded bucket of several keys: everything below it is pruned now; the counting engine
  // prunes the remaining r among the bucket's key range, all other entries being settled.
  SelectPlan q;
  q.dtype = p.dtype;
  q.runs = p.runs;
  q.chunks = p.chunks;
  q.alive = p.alive - f.before;
  q.k = f.r;
  q.lo = p.lo + (static_cast<uint64_t>(f.cut) << p.shift);
  q.hi = std::min(p.hi, q.lo + (uint64_t(1) << p.shift));
  q.below = 0;
  q.in_range = f.in_cut;
  const SelectResult rest = apply_selection(q, kern);
  return {p.alive, p.k, rest.threshold};
}

std::vector<SelectPlan*> pointers(std::vector<SelectPlan>& plans) {
  std::vector<SelectPlan*> out;
  for (SelectPlan& p : plans) out.push_back(&p);
  return out;
}

void mark_passes(const std::vector<SelectPlan*>& plans, const simd::SelectKernels& kern) {
  band_pass(plans, simd::kMarkBuckets,
            [&](size_t q, const Chunk& ch, int64_t* hist, simd::BandCount* bc) {
              const SelectPlan& p = *plans[q];
              kern.mark(p.dtype, chunk_weights(p, ch), p.runs[ch.run].m + ch.start, ch.len,
                        p.lo, p.hi, p.shift, hist, bc);
            });
}

}  // namespace

void mark_pass(SelectPlan& p, const simd::SelectKernels& kern) { mark_passes({&p}, kern); }

std::vector<int64_t> resolve_pass(SelectPlan& p, int cut, uint8_t below_value, int64_t cap,
                                  const simd::SelectKernels& kern) {
  return resolve_passes({&p}, {{cut, below_value, cap}}, kern)[0];
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

std::vector<SelectPlan> mark_selections(simd::DType dtype, std::vector<std::vector<Run>> groups,
                                        const std::vector<double>& amounts, bool by_count,
                                        const simd::SelectKernels& kern) {
  std::vector<SelectPlan> plans(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    plans[g].dtype = dtype;
    plans[g].runs = std::move(groups[g]);
    plans[g].chunks = make_chunks(plans[g].runs);
  }
  // The rankings' samples side by side (scope="layer": one a tensor); one ranking's sample
  // reads its blocks in parallel itself.
  at::parallel_for(0, static_cast<int64_t>(plans.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g)
      band_from_sample(plans[g], amounts[g], by_count, kBandSigmas,
                       sample_blocks(plans[g].runs), kSampleFrom);
  });
  mark_passes(pointers(plans), kern);
  return plans;
}

void unmark_selections(std::vector<SelectPlan>& plans, const simd::SelectKernels& kern) {
  resolve_passes(pointers(plans), std::vector<ResolveSpec>(plans.size(), {-1, 1, 0}), kern);
}

std::vector<SelectResult> finish_selections(std::vector<SelectPlan>& plans,
                                            const std::vector<double>& amounts, bool by_count,
                                            const simd::SelectKernels& kern) {
  // Every plan that resolves in the shared pass does so in one parallel region.
  std::vector<Finish> finishes;
  std::vector<SelectPlan*> shared;
  std::vector<ResolveSpec> specs;
  std::vector<size_t> slot(plans.size(), 0);
  for (size_t g = 0; g < plans.size(); ++g) {
    finishes.push_back(finish_of(plans[g]));
    if (const std::optional<ResolveSpec> s = resolve_spec(finishes.back())) {
      slot[g] = shared.size();
      shared.push_back(&plans[g]);
      specs.push_back(*s);
    }
  }
  const std::vector<std::vector<int64_t>> pending = resolve_passes(shared, specs, kern);
  const std::vector<int64_t> none;
  std::vector<SelectResult> results;
  for (size_t g = 0; g < plans.size(); ++g) {
    const bool in_shared = finishes[g].kind != Finish::ties;
    results.push_back(complete(plans[g], finishes[g], in_shared ? pending[slot[g]] : none,
                               amounts[g], by_count, kern));
  }
  return results;
}

}  // namespace lth_fast::cpu
