"""Pure-PyTorch twins of the fast ops: same names, same signatures, same results. This is the
executable spec every fast path is tested against, and the honest pure-PyTorch way it is
measured against (concatenate, kthvalue, resolve ties by position)."""
from __future__ import annotations

import math
from typing import List, Sequence, Union

import torch

from .amounts import Amount, k_for, parse_amount
from .checks import check_float_list, check_like
from .stats import PruneStats


def _select(weights: List[torch.Tensor], masks: List[torch.Tensor], k: int):
    """New flat alive mask after pruning the k smallest alive |w| (ties: earlier position)."""
    mags = torch.cat([w.detach().reshape(-1).abs() for w in weights])
    alive = torch.cat([m.reshape(-1) for m in masks])
    if k == 0:
        return alive, None
    t = mags[alive].kthvalue(k).values  # the k-th smallest alive magnitude
    below = alive & (mags < t)
    ties = alive & (mags == t)
    need = k - int(below.sum())
    prune = below | (ties & (ties.cumsum(0) <= need))
    return alive & ~prune, float(t)


def prune_(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
           amount: Union[Amount, Sequence[Amount]], *, scope: str = "global") -> PruneStats:
    """Reference of lth_fast.prune_ (see there)."""
    weights, masks = list(weights), list(masks)
    fractions, counts, layerwise = parse_amount(amount, scope, len(weights))
    check_float_list("prune_", "weights", weights)
    check_like("prune_", "masks", masks, "weights", weights, torch.bool)
    for i, w in enumerate(weights):
        if torch.isnan(w).any():
            raise ValueError(f"prune_: weights[{i}] contains NaN")
    groups = [[i] for i in range(len(weights))] if layerwise else [list(range(len(weights)))]
    plans = []
    for g, idx in enumerate(groups):  # check every ranking before writing any mask
        alive = sum(int(masks[i].sum()) for i in idx)
        k = k_for(fractions, counts, g, alive)
        if k > alive:
            where = f" of weights[{g}]" if layerwise else ""
            j = g if counts and len(counts) > 1 else 0
            raise ValueError(f"prune_: amount[{j}] = {k} exceeds the {alive} alive entries{where}")
        plans.append((idx, alive, k))
    rows = []
    for idx, alive, k in plans:
        if not idx:
            rows.append(PruneStats(alive, k, None))
            continue
        new, threshold = _select([weights[i] for i in idx], [masks[i] for i in idx], k)
        for i, part in zip(idx, new.split([masks[i].numel() for i in idx])):
            masks[i].copy_(part.view_as(masks[i]))
        rows.append(PruneStats(alive, k, threshold))
    if not layerwise:
        return rows[0]
    return PruneStats(sum(r.alive_before for r in rows), sum(r.pruned for r in rows), None,
                      tuple(rows))
