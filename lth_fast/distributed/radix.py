"""A radix select across ranks over integer magnitude keys (lth_fast.distributed.keys): one
digit per pass, each pass all-reducing one int64 histogram per ranking, so every rank learns
the key T of the k-th smallest and how many keys lie below it. Used on whole shards by the
engine for any device (select_any_device) and on the few candidates the CPU engine collects
(lth_fast.distributed.marked)."""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch

from . import comm

# Digits of a full key: float32 keys have 31 bits, float16/bfloat16 15, float64 63.
FULL_DIGITS = {31: (11, 10, 10), 15: (8, 7), 63: (9,) * 7}


def digits_for(bits: int, widest: int = 11) -> Tuple[int, ...]:
    """How a key range of `bits` bits is split, at most `widest` bits a pass."""
    if bits in FULL_DIGITS and widest == 11:
        return FULL_DIGITS[bits]
    if bits <= 0:
        return ()
    n = math.ceil(bits / widest)
    return tuple(bits // n + (1 if i < bits % n else 0) for i in range(n))


def radix_select(cands: List[List[torch.Tensor]], need: Sequence[int], bits: int, base: int,
                 group, dev, few: bool = False, total: Sequence[int] = ()):
    """For each ranking g: cands[g] holds this rank's candidate keys (each in [base, base +
    2^bits)), one tensor per tensor of the ranking; need[g] >= 1 (0: skipped) is the rank, over
    every rank's candidates, of the key sought. Returns per ranking the key T, how many
    candidates lie below it and how many equal it over all ranks, and this rank's candidates
    equal to T (total[g], every rank's candidates, counts those equal when bits = 0 leaves no
    digit to select). few: the candidates number under 2^31 over all ranks, so the
    histograms are int32 and a pass takes up to 13 bits (32 KB). Every rank passes the same
    need, bits and few, so all issue the same collectives."""
    G = len(cands)
    prefix, below, equal = [0] * G, [0] * G, list(total) or [0] * G
    cands = [[c.long() - base for c in per] for per in cands]
    left = bits
    for width in digits_for(bits, 13 if few else 11):
        left -= width
        hist = torch.zeros((G, 1 << width), dtype=torch.int32 if few else torch.int64)
        digit = [[None] * len(per) for per in cands]
        for g, per in enumerate(cands):
            if not need[g]:
                continue
            for i, c in enumerate(per):
                digit[g][i] = (c >> left) & ((1 << width) - 1)
                hist[g] += torch.bincount(digit[g][i], minlength=1 << width).to(hist.dtype)
        hist = comm.all_reduce_sum(hist.to(dev), group).cpu().long()
        for g, per in enumerate(cands):
            if not need[g]:
                continue
            cum = hist[g].cumsum(0)
            b = int(torch.searchsorted(cum, need[g] - below[g]))  # first bucket reaching it
            below[g] += int(cum[b - 1]) if b else 0
            equal[g] = int(hist[g, b])
            prefix[g] = (prefix[g] << width) | b
            cands[g] = [c[d == b] for c, d in zip(per, digit[g])]
    return [base + p for p in prefix], below, equal, cands


def tie_shares(local_ties: Sequence[int], groups: Sequence[Sequence[int]],
               takes: Sequence[int], group, dev, me: int) -> List[int]:
    """How many of this rank's entries tied at its ranking's key to prune, per tensor: ranking
    g (the tensors groups[g]) prunes takes[g] of its ties by position, (tensor, rank, local
    index). local_ties[i]: this rank's tied entries in tensor i. One all_gather of a count
    per tensor."""
    every = comm.all_gather(torch.tensor(list(local_ties), dtype=torch.int64, device=dev),
                            group).cpu()  # [world, tensors]
    out = [0] * len(local_ties)
    for idx, take in zip(groups, takes):
        for i in idx:
            before = int(every[:me, i].sum())
            out[i] = max(0, min(int(every[me, i]), take - before))
            take -= int(every[:, i].sum())
    return out
