"""prune_ for every layout: single process, replicated (DDP), and sharded (FSDP2 / HSDP
DTensors, or each rank's torch.chunk shards of the same tensors with a process group)."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.distributed as dist

from ..ops import PruneStats
from ..ops.api import prune_ as local_prune_
from ..ops.nm import NM, read_scope
from . import comm
from .select import sharded_select_
from .shards import local_masks, unwrap


def prune_(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], amount=None, *,
           scope: Union[str, NM] = "global", group: Optional[object] = None,
           verify: bool = False, **deprecated) -> PruneStats:
    """lth_fast.ops.prune_, also over shards. Which ranking is done:

    - DTensor weights sharded Shard(0) (FSDP2, HSDP): one ranking over the unsharded tensors,
      over the mesh's shard group; masks are the local shards' shape (or DTensors);
    - plain tensors and a `group`: each rank passes its torch.chunk(dim 0) shards of the same
      tensors, in the same order; the ranking is over their concatenation in rank order;
    - plain tensors without a group (DDP replicas, one process): each rank selects alone,
      with no communication. verify=True then all-gathers a checksum of every mask over the
      default group and raises if any rank's masks differ from rank 0's.

    The masks equal those of single-process prune_ over the unsharded tensors, bit for bit.

    scope=NM(n, m) (no amount) is local to a group of one row: each rank runs it on its local
    shards, with no communication. Dim-0 shards hold whole rows, so the masks are again those
    of the unsharded tensors; a sharded 1-D tensor, whose groups could straddle two ranks, is
    refused. The old scope="nm", n=, m= works for one release, with a DeprecationWarning.
    """
    rule = read_scope("prune_", amount, scope, deprecated)
    local_w, layout = unwrap("weights", weights)
    local_m = local_masks("masks", masks)
    shard_group = layout.group if layout.group is not None else group
    if rule is not None:
        if shard_group is not None:
            if verify:
                raise ValueError("prune_: verify=True checks replicated masks (DDP); sharded "
                                 "tensors differ by rank")
            refuse_split_groups(layout)
        stats = local_prune_(local_w, local_m, scope=rule)
        if verify:
            verify_replicas(local_m)
        return stats
    if shard_group is None:
        stats = local_prune_(local_w, local_m, amount, scope=scope)
        if verify:
            verify_replicas(local_m)
        return stats
    if verify:
        raise ValueError("prune_: verify=True checks replicated masks (DDP); sharded tensors "
                         "differ by rank, and their selection is exact by construction")
    shapes = (layout.shapes if layout.group is not None
              else tuple((t.dim(),) + tuple(t.shape[1:]) for t in local_w))
    return sharded_select_(local_w, local_m, amount, scope, shard_group, shapes)


def refuse_split_groups(layout) -> None:
    """A shard of dim 0 holds whole rows, and so whole N:M groups, unless the tensor is 1-D."""
    for i, shape in enumerate(layout.shapes):
        if len(shape) <= 1:
            raise ValueError(f"prune_: weights[{i}] is 1-D and sharded along its only "
                             f"dimension; its N:M groups could straddle two ranks")


_CHECKSUM_CHUNK = 1 << 20


def mask_checksums(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """[tensors, 2] int64: each mask's count of True and a position-weighted sum of its bytes
    (wrapping), so two masks with the same count but other positions differ."""
    rows = []
    for m in masks:
        flat = m.reshape(-1)
        row = torch.zeros(2, dtype=torch.int64, device=m.device)
        for start in range(0, flat.numel(), _CHECKSUM_CHUNK):  # int64 temporaries bounded
            part = flat[start:start + _CHECKSUM_CHUNK].to(torch.int64)
            weights = torch.arange(start, start + part.numel(), dtype=torch.int64,
                                   device=m.device) * 2 + 1
            row += torch.stack([part.sum(), (part * (weights * 0x9E3779B1)).sum()])
        rows.append(row)  # int64 sums wrap, so the chunked sum equals the whole one
    return torch.stack(rows) if rows else torch.zeros((0, 2), dtype=torch.int64)


def verify_replicas(masks: Sequence[torch.Tensor], group: Optional[object] = None) -> None:
    """Raises ValueError naming the first mask and rank that differ from rank 0's."""
    if not dist.is_initialized():
        return
    dev = comm.device_for(group, masks[0].device if masks else torch.device("cpu"))
    mine = mask_checksums(local_masks("masks", masks)).to(dev)
    size = comm.all_gather(torch.tensor([mine.shape[0]], dtype=torch.int64, device=dev), group)
    if (size != size[0]).any():
        r = int((size.view(-1) != size[0, 0]).nonzero()[0])
        raise ValueError(f"prune_: rank {r} holds {int(size[r])} masks but rank 0 holds "
                         f"{int(size[0])}; replicas hold the same tensors")
    every = comm.all_gather(mine, group).cpu()
    for r in range(every.shape[0]):
        diff = (every[r] != every[0]).any(dim=1).nonzero()
        if diff.numel():
            i = int(diff[0])
            raise ValueError(f"prune_: masks[{i}] on rank {r} differs from rank 0's "
                             f"({int(every[r, i, 0])} vs {int(every[0, i, 0])} alive): the "
                             f"replicas' masks diverged")
