"""The sharded selection engine on CPU: the one-pass engine of single-process prune_
(csrc/cpu/select/one_pass.h), its passes run by each rank on its shards through the
lth_fast_shard ops, the ranks agreeing on the band and the cut between passes:

1. every rank samples its shards; the samples are all-gathered (fixed size), so every rank
   derives the same key band [lo, hi) around the k-th smallest alive key;
2. one marking pass writes what it learns into the mask bytes (undoable) and counts a
   histogram of the band (BUCKETS buckets), all-gathered with the counts and the first NaN;
3. every ranking is marked and checked before any is finished, so a NaN or a count above
   the alive entries raises on every rank with every mask as it was;
4. the cut bucket's few entries are collected (one pass over the masks alone) and radix-
   selected across ranks (lth_fast.distributed.radix), and ties go by position. A band the
   sample missed is marked again around the right side; a crowded bucket of one key is cut
   by position from per-tensor counts; a crowded bucket of several keys is marked again.

Its cost per rank is that of single-process prune_ on the shard, plus a few small
collectives.

What these passes and this module must agree on (mark_'s output layout, the bucket count, the
sample band's constants) is stated once, in C++, and read here at import through
torch.ops.lth_fast_shard.protocol (csrc/cpu/select/shard_ops.cpp)."""
from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np
import torch

from ..ops import library  # noqa: F401  (loads lth_fast._C: torch.ops.lth_fast_shard)
from ..ops.amounts import k_for
from ..ops.stats import PruneStats
from . import comm
from .any_device import check_counts
from .keys import key_bits, key_end, magnitude
from .radix import radix_select, tie_shares

_OPS = torch.ops.lth_fast_shard
_INTS = ("mark_alive", "mark_below", "mark_in_band", "mark_nan", "mark_shift", "mark_hist",
         "mark_buckets", "sample_block", "min_sample_keys")
_FLOATS = ("band_sigmas", "band_extra_ranks")


def _protocol():
    """The constants lth_fast._C states for the sharded engine, checked to be all there."""
    try:
        ints, floats = _OPS.protocol()
    except (AttributeError, RuntimeError) as e:
        raise ImportError("lth_fast._C has no op lth_fast_shard::protocol, so the sharded CPU "
                          "engine cannot read mark_'s layout and the band's constants: the "
                          "extension was built from older sources; rebuild it (make install, "
                          "or pip install --no-build-isolation -e .)") from e
    missing = [k for k in _INTS if k not in ints] + [k for k in _FLOATS if k not in floats]
    if missing:
        raise ImportError(f"lth_fast_shard::protocol of this lth_fast._C lacks {missing}: the "
                          f"extension and lth_fast/distributed/marked.py are from different "
                          f"sources; rebuild it (make install)")
    return ints, floats


_P, _BAND = _protocol()
# mark_'s output: counts at these indices, then the band's histogram of BUCKETS buckets.
ALIVE, BELOW, IN_BAND, NAN, SHIFT, HIST = (
    _P[k] for k in ("mark_alive", "mark_below", "mark_in_band", "mark_nan", "mark_shift",
                    "mark_hist"))
BUCKETS = _P["mark_buckets"]
SAMPLE_BLOCK = _P["sample_block"]        # sample keys come in blocks of neighbours this long
MIN_SAMPLE_KEYS = _P["min_sample_keys"]  # fewer keys sampled: the band is the whole key range
BAND_SIGMAS = _BAND["band_sigmas"]       # the one-pass engine's band, in sample ranks:
BAND_EXTRA_RANKS = _BAND["band_extra_ranks"]  # sigmas of the binomial spread, plus these
# (tests set these module attributes to force the rare paths)

SAMPLE_WORDS = 3072        # int64 words of sample keys a rank sends (24 KB): 6144 keys of
                           # up to 32 bits two to a word (float64: 3072), in SAMPLE_BLOCKs
CUT_BUCKET_MAX_COLLECTED = 1 << 16  # most entries of a cut bucket, summed over all ranks, that
                           # are collected and selected exactly (gathered or radix-selected); a
                           # fuller bucket is cut by position (one key) or marked again, finer.
                           # Not the C++ kCollectCap, which bounds one process's collection.
GATHER_BYTES = 32768       # most bytes of cut-bucket entries one rank sends to the others


class _Ranking:
    """One ranking's tensors and where its selection stands, the same on every rank."""

    def __init__(self, weights, masks, idx):
        self.idx = list(idx)
        self.w = [weights[i] for i in idx]
        self.m = [masks[i] for i in idx]
        self.marked = False

    def mark(self, lo: int, hi: int, group, dev):
        """Marks for [lo, hi); the counts of every rank, summed, and this rank's own."""
        # float64's key range ends at 2^63, beyond int64: the one key left out is a NaN's,
        # which the pass reports anyway.
        hi = min(hi, (1 << 63) - 1)
        own = _OPS.mark_(self.w, self.m, lo, hi)
        self.marked = True
        every = comm.all_gather(own.to(dev), group).cpu()  # [world, HIST + BUCKETS]
        self.lo, self.hi, self.shift = lo, hi, int(own[SHIFT])
        sums = every.sum(0)
        self.alive, self.below, self.in_band = (int(sums[i]) for i in (ALIVE, BELOW, IN_BAND))
        nans = every[:, NAN][every[:, NAN] >= 0]
        self.nan = int(self.idx[int(nans.min())]) if nans.numel() else -1
        self.per_rank = every[:, HIST:]  # [world, BUCKETS]
        self.hist = self.per_rank.sum(0)
        self.own_hist = own[HIST:]

    def resolve(self, cut: int, below_value: int, cap: int) -> torch.Tensor:
        out = _OPS.resolve_(self.w, self.m, cut, below_value, cap)
        self.marked = False
        return out

    def unmark(self):
        if self.marked:
            self.resolve(-1, 1, 0)


def _band(samples: torch.Tensor, f: float, dtype, by_count: bool, amount) -> tuple:
    """[lo, hi) from every rank's sample_row: each key stands for (entries in the ranking /
    entries covered) of its rank's entries. Deterministic, so every rank derives the same
    band (numpy: its sort of ~10K keys is ten times torch's)."""
    end = key_end(dtype)
    keys, weights = [], []
    for row in samples:
        seen, total, n = int(row[0]), int(row[1]), int(row[2])
        if n:
            keys.append(_sample_keys(row, dtype).numpy())
            weights.append(np.full(n, total / seen))
    n = sum(len(k) for k in keys)
    if n < MIN_SAMPLE_KEYS:
        return 0, end
    keys, weights = np.concatenate(keys), np.concatenate(weights)
    order = np.argsort(keys)
    keys, cum = keys[order], np.cumsum(weights[order])
    alive = float(cum[-1])
    if by_count:
        f = amount / alive if alive else 0.0
    f = min(1.0, max(0.0, f))
    margin = (BAND_SIGMAS * math.sqrt(n * f * (1 - f)) + BAND_EXTRA_RANKS) * alive / n
    lo_at, hi_at = f * alive - margin, f * alive + margin
    lo = int(keys[min(n - 1, int(np.searchsorted(cum, lo_at)))]) if lo_at > 0 else 0
    hi_i = int(np.searchsorted(cum, hi_at))
    hi = int(keys[hi_i]) + 1 if hi_at < alive and hi_i < n else end
    return lo, max(hi, lo + 1)


SAMPLE_ROW = 3 + SAMPLE_WORDS


def sample_row(weights, masks, dtype) -> torch.Tensor:
    """This rank's sample of one ranking, fixed-size: entries the blocks cover, entries in
    the ranking, keys sampled, then the keys (two to a word below 33 bits)."""
    wide = key_bits(dtype) > 32
    local = _OPS.sample(weights, masks, SAMPLE_WORDS * (1 if wide else 2) // SAMPLE_BLOCK)
    keys = local[1:]
    row = torch.full((SAMPLE_ROW,), -1, dtype=torch.int64)
    row[0], row[1], row[2] = int(local[0]), sum(t.numel() for t in weights), keys.numel()
    if not wide:
        keys = torch.cat([keys, keys.new_zeros(keys.numel() % 2)])
        keys = (keys[0::2] << 32) | keys[1::2]
    row[3:3 + keys.numel()] = keys
    return row


def _sample_keys(row: torch.Tensor, dtype) -> torch.Tensor:
    n = int(row[2])
    if key_bits(dtype) > 32:
        return row[3:3 + n]
    words = row[3:3 + (n + 1) // 2]
    return torch.stack([words >> 32, words & 0xFFFFFFFF], dim=1).reshape(-1)[:n]


def first_sample(weights, masks, groups) -> torch.Tensor:
    """The sample of the first ranking, sent with the agreement check (saves a collective)."""
    if not groups:
        return torch.zeros(SAMPLE_ROW, dtype=torch.int64)
    dtype = weights[0].dtype if weights else torch.float32
    return sample_row([weights[i] for i in groups[0]], [masks[i] for i in groups[0]], dtype)


def select_cpu(weights, masks, groups: Sequence[Sequence[int]], fractions, counts,
               layerwise: bool, group, dev, me: int, first=None) -> List[PruneStats]:
    """first: every rank's first_sample, gathered with the agreement check."""
    dtype = weights[0].dtype if weights else torch.float32
    rankings = [_Ranking(weights, masks, idx) for idx in groups]
    try:
        want = []
        for g, r in enumerate(rankings):
            samples = first if g == 0 and first is not None else comm.all_gather(
                sample_row(r.w, r.m, dtype).to(dev), group).cpu()
            amount = counts[g if len(counts) > 1 else 0] if counts else None
            f = fractions[g if len(fractions) > 1 else 0] if fractions else 0.0
            lo, hi = _band(samples, f, dtype, bool(counts), amount)
            r.mark(lo, hi, group, dev)
            want.append(k_for(fractions, counts, g, r.alive))
        nans = [r.nan for r in rankings if r.nan >= 0]
        if nans:
            raise ValueError(f"prune_: weights[{min(nans)}] contains NaN")
        check_counts(want, [r.alive for r in rankings], counts, layerwise)
        rows = []
        for r, k in zip(rankings, want):
            alive = r.alive
            threshold = _finish(r, k, dtype, group, dev, me) if k else None
            r.unmark()
            rows.append(PruneStats(alive, k, threshold))
        return rows
    except BaseException:
        for r in rankings:
            r.unmark()
        raise


def _finish(r: _Ranking, need: int, dtype, group, dev, me: int) -> float:
    """Prunes `need` entries of a marked ranking; returns the largest pruned magnitude."""
    while True:
        if r.below >= need:  # the band lies above the k-th: mark [0, lo)
            lo = r.lo
            r.unmark()
            r.mark(0, lo, group, dev)
            continue
        if r.below + r.in_band < need:  # below it: mark [hi, end)
            hi = r.hi
            r.unmark()
            r.mark(hi, key_end(dtype), group, dev)
            continue
        cum = r.hist.cumsum(0)
        cut = int(torch.searchsorted(cum, need - r.below))
        before = r.below + (int(cum[cut - 1]) if cut else 0)
        take, in_cut = need - before, int(r.hist[cut])
        base = r.lo + (cut << r.shift)
        if in_cut <= CUT_BUCKET_MAX_COLLECTED:
            return _collected(r, cut, take, base, dtype, group, dev, me)
        if r.shift == 0:  # one key, too many to collect: ties cut by position
            ties = _OPS.count_marks(r.w, r.m, cut).tolist()
            shares = tie_shares(ties, [range(len(r.w))], [take], group, dev, me)
            _OPS.clear_first_marks_(r.w, r.m, cut, shares)
            r.marked = False
            return magnitude(base, dtype)
        # A crowded bucket of several keys: what lies below it is pruned now, and the bucket's
        # key range is marked again, finer.
        r.resolve(cut, 0, 0)
        r.mark(base, min(r.hi, base + (1 << r.shift)), group, dev)
        need = take


def _collected(r: _Ranking, cut: int, take: int, base: int, dtype, group, dev, me) -> float:
    """The cut bucket collected, the `take` smallest by (key, position) pruned: gathered to
    every rank when each holds few of them, else radix-selected across ranks."""
    found = r.resolve(cut, 0, int(r.own_hist[cut]))  # [n, 3] (tensor, index, key), in order
    width = int(r.per_rank[:, cut].max())
    tb = max(1, len(r.w).bit_length())
    # An entry is (key - base, tensor) packed: in 32 bits when they fit, else 64.
    size = 4 if r.shift + tb <= 31 else 8 if key_bits(dtype) + tb <= 62 else 0
    if size and width * size <= GATHER_BYTES:
        return _gathered(r, found, width, take, base, tb, size, dtype, group, dev, me)
    keys = found[:, 2]
    (t,), (below,), (equal,), _ = radix_select([[keys]], [take], r.shift, base, group, dev,
                                               few=True, total=[int(r.hist[cut])])
    tied = keys == t
    prune = keys < t
    if take - below < equal:  # a tie at t cut by position: who holds which ties
        tensor_of = found[tied, 0]
        ties = torch.bincount(tensor_of, minlength=len(r.w))
        shares = torch.tensor(tie_shares(ties.tolist(), [range(len(r.w))], [take - below],
                                         group, dev, me), dtype=torch.int64)
        # The first shares[tensor] ties of each tensor, by position (found is in order).
        nth = torch.arange(tensor_of.numel()) - torch.searchsorted(tensor_of, tensor_of)
        prune[tied] = nth < shares[tensor_of]
    else:
        prune |= tied
    _OPS.clear_(r.w, r.m, found[prune, :2].contiguous())
    return magnitude(t, dtype)


def _gathered(r: _Ranking, found, width: int, take: int, base: int, tb: int, size: int, dtype,
              group, dev, me) -> float:
    """Every rank's cut-bucket entries as (key - base) << tb | tensor, -1 padded to `width`,
    in rank order and, within a rank, position order: so (packed value, index in the
    gathered list) orders them by (key, tensor, rank, index), i.e. by (key, position); the
    first `take` are pruned."""
    packed = torch.full((width,), -1, dtype=torch.int32 if size == 4 else torch.int64)
    packed[:found.shape[0]] = ((found[:, 2] - base) << tb) | found[:, 0]
    flat = comm.all_gather(packed.to(dev), group).cpu().reshape(-1).numpy().astype(np.int64)
    valid = np.flatnonzero(flat >= 0)
    ib = max(1, int(flat.size).bit_length())
    if 8 * size - 1 + ib <= 62:  # one sort of unique values, the index in the low bits
        chosen = np.sort((flat[valid] << ib) | valid)[:take] & ((1 << ib) - 1)
    else:
        chosen = valid[np.argsort(flat[valid], kind="stable")[:take]]
    mine = chosen[(chosen // width) == me] % width  # ordinals among this rank's entries
    _OPS.clear_(r.w, r.m, found[torch.from_numpy(mine), :2].contiguous())
    return magnitude(base + (int(flat[chosen[-1]]) >> tb), dtype)
