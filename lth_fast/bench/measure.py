"""Timing and the memory-bandwidth floor (docs/measuring.md).

A repetition is setup() (untimed: restore masks, rebuild modules) then op() (timed). On CUDA the
op is timed with CUDA events after the setup's work has finished; on CPU with perf_counter.
The floor is measured in the same process over buffers as large as the workload, on the same
threads, so the cache and thread situation match the op's: the best bandwidth of its probes.
On a CPU they are compiled into the extension (torch.ops.lth_fast_bench.stream: widest
vectors, each thread one contiguous slice): a read-only pass (4 B per float32), a write (4 B),
a copy (8 B) and a triad a = b + s*c (12 B) with non-temporal stores, and an update that
rewrites two of its three buffers in place as an optimizer step does (20 B). On a GPU the four
STREAM kinds are torch's own sum, fill_, copy_ and add (a GPU's full-sector stores allocate
without reading, so they move the same bytes).
"""
from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

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


# Bytes per float32 element each probe moves (no write-allocate reads: streaming stores; the
# update rewrites two of its three buffers in place, as an optimizer step does). On a GPU the
# four STREAM kinds are torch's own ops.
PROBE_BYTES = {"read": 4, "write": 4, "copy": 8, "triad": 12, "update": 20}


@dataclass
class Floor:
    """Best bandwidth (bytes/s) of each probe over `numel` float32 elements per buffer."""
    numel: int
    probe_bps: Dict[str, float]

    @property
    def bps(self) -> float:
        return max(self.probe_bps.values())

    @property
    def method(self) -> str:
        return max(self.probe_bps, key=self.probe_bps.get)

    def seconds(self, nbytes: float) -> float:
        """The least time moving nbytes can take at the floor bandwidth."""
        return nbytes / self.bps

    def as_dict(self) -> dict:
        return {"numel": self.numel, "gbps": self.bps / 1e9, "method": self.method,
                "probes_gbps": {k: v / 1e9 for k, v in self.probe_bps.items()}}


def best_of(a: Floor, b: Floor) -> Floor:
    """The best of two measurements of each probe over the same buffers."""
    return Floor(a.numel, {k: max(a.probe_bps[k], b.probe_bps[k]) for k in a.probe_bps})


def _probes(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> Dict[str, Callable[[], object]]:
    if a.device.type == "cpu" and hasattr(torch.ops, "lth_fast_bench") and \
            hasattr(torch.ops.lth_fast_bench, "stream"):
        stream = torch.ops.lth_fast_bench.stream
        return {kind: (lambda kind=kind: stream(a, b, c, kind, 0.5)) for kind in PROBE_BYTES}
    return {"read": lambda: a.sum(), "write": lambda: a.fill_(0.5),
            "copy": lambda: a.copy_(b), "triad": lambda: torch.add(b, c, alpha=0.5, out=a)}


def measure_floor(numel: int, device="cpu", reps: int = 7, warmup: int = 2) -> Floor:
    """Floor bandwidth over float32 buffers of `numel` elements (at least the workload's bytes).

    Uses the fastest repetition of each probe (the floor is what the machine can do at best;
    the ops are quoted by median, so × floor is never flattered by a lucky floor run).
    """
    from .. import ops  # noqa: F401  (loads the extension, and with it the probes)

    numel = max(1, int(numel))
    bufs = [torch.empty(numel, dtype=torch.float32, device=device).fill_(v)
            for v in (1.0, 2.0, 3.0)]  # touched: no page faults inside the timed passes
    best = {}
    for kind, probe in _probes(*bufs).items():
        best[kind] = PROBE_BYTES[kind] * numel / min(time_op(probe, reps=reps, warmup=warmup,
                                                             device=device))
    del bufs
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return Floor(numel, best)
