"""Exact k-smallest-magnitude selection over tensors sharded across the ranks of a group,
without gathering a weight: a radix select over the keys (lth_fast.distributed.keys), one
digit per pass, each pass all-reducing one small int64 histogram per ranking. Every rank then
knows the threshold key T, how many alive keys lie below it, and how many of the entries tied
at T to prune; one all_gather of each rank's tie counts per tensor cuts the tie by position,
(tensor, rank, local index), as single-process prune_ does. The masks equal single-process
prune_ over the unsharded tensors, bit for bit.

The collectives of one call, identical in number, order and size on every rank (an empty
shard sends zeros): an all_gather of 4 int64 (a hash of the tensor lists and amounts, an error
flag, the first tensor with a NaN, the tensor count), then one all_reduce per digit (float32:
11, 10, 10 bits; float16/bfloat16: 8, 7; float64: 7 digits of 9), then one all_gather of a
tie count per tensor. Nothing is written before every rank has passed every check."""
from __future__ import annotations

import hashlib
from typing import List, Sequence, Tuple

import torch

from ..ops.amounts import k_for, parse_amount
from ..ops.checks import check_prune
from ..ops.stats import PruneStats
from . import comm
from .keys import has_nan, key_bits, keys_of, magnitude

_DIGITS = {31: (11, 10, 10), 15: (8, 7), 63: (9,) * 7}


class RankError(ValueError):
    """Another rank of the group rejected its arguments."""


def _hash(parts) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _check_agreement(head: torch.Tensor, me: int, own_error) -> None:
    """head: [world, 4] of (hash, error, first NaN tensor or -1, tensor count)."""
    if own_error is not None:
        raise own_error
    bad = (head[:, 1] != 0).nonzero()
    if bad.numel():
        r = int(bad[0])
        raise RankError(f"prune_: rank {r} of the group rejected its arguments (see the error "
                        f"on that rank); no mask was changed")
    differs = (head[:, 0] != head[0, 0]).nonzero()
    if differs.numel():
        r = int(differs[0])
        n0, nr = int(head[0, 3]), int(head[r, 3])
        counts = f" ({n0} tensors on rank 0, {nr} on rank {r})" if n0 != nr else ""
        raise ValueError(f"prune_: rank {r} was given other tensors or amounts than rank 0"
                         f"{counts}; every rank passes its shards of the same tensors, in the "
                         f"same order, with the same dtype and amount")
    nans = head[:, 2][head[:, 2] >= 0]
    if nans.numel():
        raise ValueError(f"prune_: weights[{int(nans.min())}] contains NaN")


def sharded_select_(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], amount,
                    scope: str, group, shapes: Tuple) -> PruneStats:
    """prune_ over the shards `weights`/`masks` of this rank (see the module doc). `shapes`
    describes the unsharded tensors for the agreement hash."""
    weights, masks = list(weights), list(masks)
    me = comm.rank(group)
    dev = comm.device_for(group, weights[0].device if weights else torch.device("cpu"))
    error, keys, nan_at = None, [], -1
    try:
        fractions, counts, layerwise = parse_amount(amount, scope, len(weights))
        check_prune(weights, masks, fractions, counts, layerwise)
        dtype = weights[0].dtype if weights else torch.float32
        keys = [keys_of(w) for w in weights]
        nan_at = next((i for i, k in enumerate(keys) if has_nan(k, dtype)), -1)
        digest = _hash((str(dtype), shapes, fractions, counts, layerwise))
    except (TypeError, ValueError) as e:
        error, digest = e, 0
    head = comm.all_gather(torch.tensor([digest, int(error is not None), nan_at, len(weights)],
                                        dtype=torch.int64, device=dev), group)
    _check_agreement(head.cpu(), me, error)

    groups = [[i] for i in range(len(weights))] if layerwise else [list(range(len(weights)))]
    cands = [k[m.reshape(-1)] for k, m in zip(keys, masks)]
    G = len(groups)
    prefix, below, want = [0] * G, [0] * G, [0] * G
    alive: List[int] = [0] * G
    bits_left = key_bits(dtype)
    for d, bits in enumerate(_DIGITS[bits_left]):
        bits_left -= bits
        hist = torch.zeros((G, 1 << bits), dtype=torch.int64)
        digits = [None] * len(weights)
        for g, idx in enumerate(groups):
            if d and want[g] == 0:
                continue
            for i in idx:
                digits[i] = ((cands[i] >> bits_left) & ((1 << bits) - 1)).long()
                hist[g] += torch.bincount(digits[i], minlength=1 << bits)
        hist = comm.all_reduce_sum(hist.to(dev), group).cpu()
        for g, idx in enumerate(groups):
            if d == 0:
                alive[g] = int(hist[g].sum())
                want[g] = k_for(fractions, counts, g, alive[g])
                if want[g] > alive[g]:
                    j = g if counts and len(counts) > 1 else 0
                    where = f" of weights[{g}]" if layerwise else ""
                    raise ValueError(f"prune_: amount[{j}] = {want[g]} exceeds the {alive[g]} "
                                     f"alive entries{where}")
            if want[g] == 0:
                continue
            cum = hist[g].cumsum(0)
            b = int(torch.searchsorted(cum, want[g] - below[g]))  # first bucket reaching it
            below[g] += int(cum[b - 1]) if b else 0
            prefix[g] = (prefix[g] << bits) | b
            for i in idx:
                cands[i] = cands[i][digits[i] == b]

    ties = torch.tensor([c.numel() for c in cands], dtype=torch.int64, device=dev)
    ties = comm.all_gather(ties, group).cpu()  # [world, tensors]
    rows = []
    for g, idx in enumerate(groups):
        if want[g] == 0:
            rows.append(PruneStats(alive[g], 0, None))
            continue
        left = want[g] - below[g]  # entries at key T to prune, in position order
        for i in idx:
            before = int(ties[:me, i].sum())
            take = max(0, min(int(ties[me, i]), left - before))
            left -= int(ties[:, i].sum())
            _write(keys[i], masks[i].view(-1), prefix[g], take)
        rows.append(PruneStats(alive[g], want[g], magnitude(prefix[g], dtype)))
    return PruneStats.from_rows(rows, layerwise)


def _write(keys: torch.Tensor, mask: torch.Tensor, t: int, take: int) -> None:
    """Clears the alive entries with key < t, and the first `take` alive ones with key == t."""
    if not mask.numel():
        return
    tied = (mask & (keys == t)).nonzero()[:take, 0] if take else None
    mask &= keys >= t
    if take:
        mask[tied] = False
