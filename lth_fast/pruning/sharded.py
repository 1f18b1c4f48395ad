"""Tickets of sharded parameters (FSDP2 DTensors). One format for every layout: rank 0 writes
the unsharded ticket a single process writes (masks bit-packed, the snapshot whole), gathered
one tensor at a time, so a ticket found on N ranks loads on any number, or in one process;
on loading, each rank keeps its own shard of every tensor."""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import torch.distributed as dist
from torch import Tensor

from .. import distributed
from ..ops.dtensors import is_dtensor, is_sharded, local
from . import ticket
from .mask_set import MaskSet


def save_ticket(path, ms: MaskSet, params: Sequence[Tensor],
                dense: Optional[Mapping[str, Tensor]], tensors: Mapping[str, Tensor]) -> None:
    """Every rank calls it; rank 0 writes. The others wait until the file is there. dense:
    this rank's part of the other tensors at the rewind point (or None); tensors: the
    model's tensors by name, which say how each is sharded."""
    if ms.snapshot is None:
        ticket.save(path, ms)  # raises: a ticket needs a snapshot
    masks = {n: distributed.unsharded(ms.masks[n], p) for n, p in zip(ms.names, params)}
    snapshot = {n: distributed.unsharded(local(ms.snapshot[n]), p)
                for n, p in zip(ms.names, params)}
    whole = None if dense is None else {
        n: (distributed.unsharded(t.to(local(tensors[n]).device), tensors[n])
            if is_sharded(tensors[n]) else t) for n, t in dense.items()}
    try:
        if dist.get_rank() == 0:
            ticket.save(path, MaskSet(ms.names, masks, snapshot, whole))
    finally:
        dist.barrier()


def shard_state(path, loaded: MaskSet, params: Sequence[Tensor]) -> Dict[str, Tensor]:
    """The state_dict of this rank's shards of a loaded unsharded ticket."""
    out = {}
    for n, p in zip(loaded.names, params):
        if tuple(loaded.masks[n].shape) != tuple(p.shape):
            raise ValueError(f"ticket {path}: {n} has shape {list(loaded.masks[n].shape)} but "
                             f"the model's has {list(p.shape)}")
        out[f"{n}.mask"] = distributed.shard_of(loaded.masks[n], p).clone()
        out[f"{n}.snapshot"] = distributed.shard_of(loaded.snapshot[n], p).clone()
    return out


def place_snapshot(ms: MaskSet, params: Sequence[Tensor]) -> None:
    """Gives each DTensor parameter's snapshot the parameter's placements (a loaded snapshot
    is the local shard)."""
    if ms.snapshot is None:
        return
    for n, p in zip(ms.names, params):
        if is_dtensor(p) and not is_dtensor(ms.snapshot[n]):
            ms.snapshot[n] = type(p).from_local(ms.snapshot[n], p.device_mesh, p.placements,
                                                run_check=False, shape=p.shape,
                                                stride=p.stride())
