"""Exact k-smallest-magnitude selection over tensors sharded across the ranks of a group,
without gathering a weight; the masks equal single-process prune_ over the unsharded tensors,
bit for bit. This module checks that the ranks agree, then runs an engine:
lth_fast.distributed.marked on CPU (the one-pass engine of single-process prune_, its passes
per rank, a few small collectives between them), lth_fast.distributed.any_device elsewhere
(a radix select over the keys in tensor ops).

Every rank issues the same collectives, in number, order and size (an empty shard sends
zeros), all of int64: first an all_gather of 4 (a hash of the tensor lists and amounts, an
error flag, the first tensor with a NaN, the tensor count); nothing is written before every
rank has passed every check."""
from __future__ import annotations

import hashlib
import os
from typing import Sequence, Tuple

import torch

from ..ops.amounts import parse_amount
from ..ops.checks import check_prune
from ..ops.stats import PruneStats
from . import comm
from .any_device import select_any_device
from .keys import has_nan, keys_of
from .marked import SAMPLE_ROW, first_sample, select_cpu


# LTH_FAST_SHARD_ENGINE=any runs the any-device engine on CPU too (as LTH_FAST_CPU_ISA
# forces an instruction set): so it is tested where no GPU is.
_ENGINE = os.environ.get("LTH_FAST_SHARD_ENGINE", "auto")


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
    first_device = getattr(weights[0], "device", torch.device("cpu")) if weights else \
        torch.device("cpu")
    dev = comm.device_for(group, first_device)
    error, nan_at = None, -1
    # The engine (every rank chooses the same, or the agreement hash differs): the CPU one
    # sends its first sample with the agreement check.
    on_cpu = first_device.type == "cpu" and _ENGINE != "any"
    try:
        fractions, counts, layerwise = parse_amount(amount, scope, len(weights))
        check_prune(weights, masks, fractions, counts, layerwise)
        dtype = weights[0].dtype if weights else torch.float32
        device_type = weights[0].device.type if weights else "cpu"
        if device_type != "cpu":  # the CPU engine finds NaNs in its marking pass
            nan_at = next((i for i, w in enumerate(weights) if has_nan(keys_of(w), dtype)), -1)
        digest = _hash((str(dtype), device_type, shapes, fractions, counts, layerwise))
        groups = [[i] for i in range(len(weights))] if layerwise else [list(range(len(weights)))]
        extra = first_sample(weights, masks, groups) if on_cpu else None
    except (TypeError, ValueError) as e:
        error, digest, extra = e, 0, None
    if on_cpu and extra is None:
        extra = torch.zeros(SAMPLE_ROW, dtype=torch.int64)
    mine = torch.tensor([digest, int(error is not None), nan_at, len(weights)], dtype=torch.int64)
    head = comm.all_gather((torch.cat([mine, extra]) if on_cpu else mine).to(dev), group).cpu()
    _check_agreement(head[:, :4], me, error)
    engine = select_cpu if on_cpu else select_any_device
    rows = engine(weights, masks, groups, fractions, counts, layerwise, group, dev, me,
                  first=head[:, 4:] if on_cpu else None)
    return PruneStats.from_rows(rows, layerwise)
