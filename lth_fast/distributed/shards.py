"""Local shards of the tensors a sharded prune_ ranks.

A DTensor (FSDP2's `fully_shard`, HSDP) is read through `to_local()`, never through FSDP's
padded storage, whose padding must not count as alive weights. Supported placements: one
`Shard(0)` on one mesh dimension (the shard group), `Replicate()` on the others. `Shard(0)`
splits dim 0 by `torch.chunk` rules, so the local shard of rank r is the contiguous flat range
starting at r * ceil(N / world) rows (short or empty for the last ranks); that arithmetic is
checked against the local shape here, since FSDP's own offset helpers are private. Positions
are (tensor index, element index in the unsharded tensor), so the global order is (tensor,
rank, local index) and ranks need no offsets to break ties."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch

from ..ops.dtensors import is_dtensor


@dataclass
class Layout:
    """How the call's tensors are spread: `group` ranks the shards together (None: every
    rank holds whole tensors and selects alone)."""
    group: Optional[object]
    shapes: Tuple[Tuple[int, ...], ...]   # the unsharded shapes, where known


def chunk_rows(rows: int, world: int, rank: int) -> Tuple[int, int]:
    """(first row, row count) of rank's part of `rows` rows under torch.chunk(world)."""
    size = -(-rows // world) if rows else 0
    start = min(rows, rank * size)
    return start, max(0, min(rows, start + size) - start)


def _shard_dim(name: str, i: int, t) -> Optional[int]:
    """The mesh dimension t is sharded over (Shard(0)), or None when it is only replicated."""
    from torch.distributed.tensor import Replicate, Shard  # t is a DTensor: it is imported
    found = None
    for d, p in enumerate(t.placements):
        if isinstance(p, Replicate):
            continue
        if type(p) is Shard and p.dim == 0 and found is None:
            found = d
            continue
        raise ValueError(f"prune_: {name}[{i}] has placements {tuple(t.placements)}; sharded "
                         f"selection supports Shard(0) on one mesh dimension and Replicate() "
                         f"on the others (not {p})")
    return found


def unwrap(name: str, tensors: Sequence[torch.Tensor]):
    """(local tensors, Layout) of a list that may hold DTensors. All DTensors of one call share
    one mesh and one shard dimension; plain tensors beside sharded DTensors are an error."""
    items = list(tensors)
    dts = [is_dtensor(t) for t in items]
    if not any(dts):
        return items, Layout(None, tuple(tuple(t.shape) for t in items))
    if not all(dts):
        i = dts.index(False)
        raise TypeError(f"prune_: {name}[{i}] is a plain tensor but {name}[{dts.index(True)}] "
                        f"is a DTensor; give one kind")
    mesh, dim = items[0].device_mesh, _shard_dim(name, 0, items[0])
    for i, t in enumerate(items):
        if t.device_mesh != mesh or _shard_dim(name, i, t) != dim:
            raise ValueError(f"prune_: {name}[{i}] is placed on another mesh or shard dimension "
                             f"than {name}[0]; one call ranks tensors of one layout")
    local = [t.to_local() for t in items]
    if dim is None:  # replicated everywhere: each rank holds whole tensors
        return local, Layout(None, tuple(tuple(t.shape) for t in items))
    group = mesh.get_group(dim)
    world, rank = mesh.size(dim), mesh.get_local_rank(dim)
    for i, (t, l) in enumerate(zip(items, local)):
        rows = t.shape[0] if t.dim() else 1
        _, count = chunk_rows(rows, world, rank)
        want = (count,) + tuple(t.shape[1:])
        if tuple(l.shape) != want:
            raise ValueError(f"prune_: {name}[{i}]'s local shard on rank {rank} has shape "
                             f"{list(l.shape)}, but torch.chunk of {list(t.shape)} over {world} "
                             f"ranks gives {list(want)}; only even torch.chunk sharding of dim 0 "
                             f"is supported")
    return local, Layout(group, tuple(tuple(t.shape) for t in items))


def local_masks(name: str, masks: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Masks as local tensors (a DTensor mask is read through to_local())."""
    return [m.to_local() if is_dtensor(m) else m for m in masks]


def shard_of(full: torch.Tensor, like) -> torch.Tensor:
    """This rank's part of the unsharded `full`, as the DTensor `like` holds it (its local
    shard's rows under torch.chunk; all of it when `like` is replicated)."""
    dim = _shard_dim("tensor", 0, like)
    if dim is None:
        return full
    mesh = like.device_mesh
    start, count = chunk_rows(full.shape[0], mesh.size(dim), mesh.get_local_rank(dim))
    return full[start:start + count]


def unsharded(local: torch.Tensor, like) -> torch.Tensor:
    """The whole tensor whose shard, placed as the DTensor `like`, is `local` (a collective:
    every rank of the mesh calls it). bool goes as uint8, which every backend gathers."""
    from torch.distributed.tensor import DTensor
    as_bytes = local.dtype == torch.bool
    t = DTensor.from_local(local.to(torch.uint8) if as_bytes else local, like.device_mesh,
                           like.placements, run_check=False, shape=like.shape,
                           stride=like.stride())
    full = t.full_tensor()
    return full.bool() if as_bytes else full
