"""The only collectives sharded selection issues: integer all_reduce (SUM) and equal-size
all_gather, over int64 tensors (gloo has no unsigned or 16-bit integer reductions). Integer
sums are exact and independent of the order ranks arrive in, so every rank derives the same
threshold. `audit()` records every call (kind, dtype, element count) for tests and for
measuring what a prune_ sends."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, List, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Call:
    kind: str          # "all_reduce" or "all_gather"
    dtype: torch.dtype
    numel: int         # elements this rank sends

    @property
    def nbytes(self) -> int:
        return self.numel * torch.empty((), dtype=self.dtype).element_size()


_audits: List[List[Call]] = []


@contextlib.contextmanager
def audit() -> Iterator[List[Call]]:
    """Records, in a list, every collective lth_fast.distributed issues inside the block."""
    calls: List[Call] = []
    _audits.append(calls)
    try:
        yield calls
    finally:
        _audits.remove(calls)


def _record(kind: str, t: torch.Tensor) -> None:
    if t.dtype not in (torch.int64, torch.int32):
        raise AssertionError(f"lth_fast.distributed sends integers only, not {t.dtype}")
    for calls in _audits:
        calls.append(Call(kind, t.dtype, t.numel()))


def world(group) -> int:
    return dist.get_world_size(group)


def rank(group) -> int:
    return dist.get_rank(group)


def all_reduce_sum(t: torch.Tensor, group) -> torch.Tensor:
    """Sum over the group, in place on a copy (the input is not changed)."""
    out = t.clone()
    _record("all_reduce", out)
    dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
    return out


def all_gather(t: torch.Tensor, group) -> torch.Tensor:
    """[world, *t.shape]: every rank's t, in rank order; every rank sends the same shape."""
    _record("all_gather", t)
    parts = [torch.empty_like(t) for _ in range(world(group))]
    dist.all_gather(parts, t.contiguous(), group=group)
    return torch.stack(parts)


def device_for(group: Optional[object], fallback: torch.device) -> torch.device:
    """Where the collectives' tensors live: CPU for gloo, the current CUDA device for nccl."""
    backend = dist.get_backend(group)
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu") if backend == "gloo" else fallback
