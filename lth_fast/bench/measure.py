"""Timing and the memory-bandwidth floor (docs/measuring.md).

A repetition is setup() (untimed: restore masks, rebuild modules) then op() (timed). On CUDA the
op is timed with CUDA events after the setup's work has finished; on CPU with perf_counter.
The floor is measured in the same process over buffers as large as the workload, so the cache
and thread situation match the op's: the best bandwidth of a float32 copy and of a read-only
reduction (4 bytes per element). A CPU copy moves 12 bytes per element (read, write-allocate,
write); a GPU's full-sector stores allocate without reading, so there it moves 8.
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_op(op: Callable[[], object], setup: Optional[Callable[[], None]] = None, *,
            reps: int = 15, warmup: int = 1, device="cpu") -> List[float]:
    """Seconds per repetition of op(), each after an untimed setup(); warmup runs discarded."""
    cuda = torch.device(device).type == "cuda"
    times: List[float] = []
    for i in range(warmup + reps):
        if setup is not None:
            setup()
        if cuda:
            synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            op()
            end.record()
            end.synchronize()
            elapsed = start.elapsed_time(end) / 1e3
        else:
            t0 = time.perf_counter()
            op()
            elapsed = time.perf_counter() - t0
        if i >= warmup:
            times.append(elapsed)
    return times


def median(times: List[float]) -> float:
    return statistics.median(times)


@dataclass
class Floor:
    """Best bandwidth (bytes/s) of a large copy and a large read-only reduction."""
    numel: int
    copy_bps: float
    reduce_bps: float
    copy_bytes: int = 12  # bytes per float32 the copy was counted at

    @property
    def bps(self) -> float:
        return max(self.copy_bps, self.reduce_bps)

    @property
    def method(self) -> str:
        return "copy" if self.copy_bps >= self.reduce_bps else "reduce"

    def seconds(self, nbytes: float) -> float:
        """The least time moving nbytes can take at the floor bandwidth."""
        return nbytes / self.bps

    def as_dict(self) -> dict:
        return {"numel": self.numel, "copy_gbps": self.copy_bps / 1e9,
                "reduce_gbps": self.reduce_bps / 1e9, "gbps": self.bps / 1e9,
                "method": self.method, "copy_bytes": self.copy_bytes}


REDUCE_BYTES = 4   # per float32: read once


def copy_bytes(device) -> int:
    """Bytes a float32 copy moves per element: read src and write dst, plus on a CPU the
    write-allocate read of dst (read for ownership)."""
    return 8 if torch.device(device).type == "cuda" else 12


def measure_floor(numel: int, device="cpu", reps: int = 7, warmup: int = 2) -> Floor:
    """Floor bandwidth over float32 buffers of `numel` elements (at least the workload's bytes).

    Uses the fastest repetition of each method (the floor is what the machine can do at best;
    the ops are quoted by median, so × floor is never flattered by a lucky floor run).
    """
    numel = max(1, int(numel))
    src = torch.empty(numel, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src).fill_(0.0)  # touch: no page faults inside the timed copies
    t_copy = min(time_op(lambda: dst.copy_(src), reps=reps, warmup=warmup, device=device))
    t_sum = min(time_op(lambda: src.sum(), reps=reps, warmup=warmup, device=device))
    del src, dst
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    per = copy_bytes(device)
    return Floor(numel, per * numel / t_copy, REDUCE_BYTES * numel / t_sum, per)
