"""The sharded selection engine for any device, in plain tensor ops: the keys of every shard
are radix-selected across ranks (lth_fast.distributed.radix), then one pass per tensor writes
its mask. It holds the keys of the alive entries while it runs (about the weights' size)."""
from __future__ import annotations

from typing import List, Sequence

import torch

from ..ops.amounts import k_for
from ..ops.stats import PruneStats
from . import comm
from .keys import key_bits, keys_of, magnitude
from .radix import radix_select, tie_shares


def select_any_device(weights, masks, groups: Sequence[Sequence[int]], fractions, counts,
                      layerwise: bool, group, dev, me: int, first=None) -> List[PruneStats]:
    dtype = weights[0].dtype if weights else torch.float32
    keys = [keys_of(w) for w in weights]
    alive_local = torch.tensor([sum(int(masks[i].sum()) for i in idx) for idx in groups],
                               dtype=torch.int64)
    alive = comm.all_reduce_sum(alive_local.to(dev), group).cpu().tolist()
    want = [k_for(fractions, counts, g, a) for g, a in enumerate(alive)]
    check_counts(want, alive, counts, layerwise)
    cands = [[keys[i][masks[i].reshape(-1)] for i in idx] for idx in groups]
    cut, below, _, ties = radix_select(cands, want, key_bits(dtype), 0, group, dev)
    local_ties = [0] * len(weights)
    for idx, per in zip(groups, ties):
        for i, c in zip(idx, per):
            local_ties[i] = c.numel()
    takes = [w - b if w else 0 for w, b in zip(want, below)]
    shares = tie_shares(local_ties, groups, takes, group, dev, me)
    rows = []
    for g, idx in enumerate(groups):
        for i in idx:
            if want[g]:
                write_cut(keys[i], masks[i].view(-1), cut[g], shares[i])
        rows.append(PruneStats(alive[g], want[g], magnitude(cut[g], dtype) if want[g] else None))
    return rows


def check_counts(want, alive, counts, layerwise: bool) -> None:
    """The error single-process prune_ raises for a count above the alive entries."""
    for g, (k, a) in enumerate(zip(want, alive)):
        if k > a:
            j = g if counts and len(counts) > 1 else 0
            where = f" of weights[{g}]" if layerwise else ""
            raise ValueError(f"prune_: amount[{j}] = {k} exceeds the {a} alive entries{where}")


def write_cut(keys: torch.Tensor, mask: torch.Tensor, t: int, take: int) -> None:
    """Clears the alive entries with key < t, and the first `take` alive ones with key == t."""
    if not mask.numel():
        return
    tied = (mask & (keys == t)).nonzero()[:take, 0] if take else None
    mask &= keys >= t
    if take:
        mask[tied] = False
