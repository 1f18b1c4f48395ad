"""Runs the registered op cases over workloads and sizes and collects every number in one dict
(the same dict is printed as markdown and written as JSON). One size at a time: measure the
floor over buffers as large as the workload, then build each workload, time every
implementation on it, free it; finally probe the fast op's peak memory in fresh processes."""
from __future__ import annotations

import datetime
import gc
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import torch

from ..devices import check_device
from . import suite, workloads
from .measure import Floor, best_of, measure_floor, median, time_op


@dataclass
class Options:
    ops: List[str] = field(default_factory=lambda: ["prune"])
    workloads: List[str] = field(default_factory=lambda: ["resnet", "transformer"])
    sizes: List[str] = field(default_factory=lambda: ["10M", "50M"])
    device: str = "cpu"
    reps: int = 15       # repetitions of the fast implementation
    slow_reps: int = 3   # repetitions of the reference and other slow baselines
    warmup: int = 1
    threads: Optional[int] = None
    baselines: bool = True
    memory: bool = True
    progress: bool = True
    seed: int = 0


def _commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str) -> dict:
    from .._version import __version__
    from ..ops.api import cpu_isa
    return {"device": device, "device_name": _device_name(device),
            "torch": torch.__version__, "lth_fast": __version__, "cpu_isa": cpu_isa(),
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "commit": _commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


BELOW_FLOOR = 0.95  # an op faster than this x its floor means the floor probe is wrong


def run_case(case: suite.OpCase, wl: workloads.Workload, opts: Options, bar=None) -> dict:
    """Times every implementation of `case` on `wl`; checks each result against the fast one."""
    row = {"op": case.name, "workload": wl.name, "size": wl.size, "params": wl.params,
           "bytes_per_param": case.bytes_per_param, "impls": {}}
    impls = case.impls if opts.baselines else [case.fast]
    expected = None
    for impl in impls:
        if bar is not None:
            bar.set_description(f"{case.name} {wl.name} {wl.size}: {impl.name}")
        prep = impl.prepare(wl)
        try:
            reps = max(1, min(opts.slow_reps, opts.reps)) if impl.slow else opts.reps
            times = time_op(prep.op, prep.setup, reps=reps, warmup=opts.warmup,
                            device=opts.device)
            out = prep.result() if prep.result is not None else None
            if out is None:
                mismatches = None  # no result comparable with the fast one
            elif expected is None:
                expected, mismatches = [t.clone() for t in out], 0
            else:
                mismatches = sum(int((a != b).sum()) for a, b in zip(expected, out))
        finally:
            prep.cleanup()
        row["impls"][impl.name] = {
            "reps": len(times), "times_s": times, "median_ms": 1e3 * median(times),
            "min_ms": 1e3 * min(times), "max_ms": 1e3 * max(times),
            "mismatches": mismatches}  # entries whose result differs from the fast impl's
        if bar is not None:
            bar.update()
    del expected
    fast_s = row["impls"][case.fast.name]["median_ms"] / 1e3
    nbytes = case.bytes_per_param * wl.params
    row["gbps"] = nbytes / fast_s / 1e9
    row["speedup"] = {name: r["median_ms"] / 1e3 / fast_s
                      for name, r in row["impls"].items() if name != case.fast.name}
    return row


def rate(row: dict, floor: Floor) -> None:
    """Sets the row's x floor: its fast median against its minimum bytes at the floor."""
    row["x_floor"] = floor.bps / (row["gbps"] * 1e9)


def run(opts: Options) -> dict:
    from tqdm import tqdm

    from . import peakmem  # imported late: `python -m lth_fast.bench.peakmem` runs it as main

    check_device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    cases = [suite.get(name) for name in opts.ops]
    for w in opts.workloads:
        if w not in workloads.SHAPES:
            raise ValueError(f"unknown workload {w!r}; choose from {sorted(workloads.SHAPES)}")
    per_wl = sum(len(c.impls) if opts.baselines else 1 for c in cases)
    mem_steps = len(cases) if opts.memory else 0
    scaled = [w for w in opts.workloads if w not in workloads.FIXED]
    fixed = [w for w in opts.workloads if w in workloads.FIXED]
    # (floor key, size, workloads measured at that floor): each scaled size once, and each
    # fixed-size model once, at its own size (its floor over buffers as large as it is)
    groups = [(size, size, scaled) for size in opts.sizes if scaled]
    groups += [(w, opts.sizes[0], [w]) for w in fixed]
    total = sum(2 + len(ws) * (per_wl + mem_steps) for _, _, ws in groups)
    out = {"meta": environment(opts.device), "floors": {}, "results": [], "peak_memory": [],
           "warnings": []}
    with tqdm(total=total, file=sys.stderr, disable=not opts.progress, unit="step",
              dynamic_ncols=True) as bar:
        for key, size, names in groups:
            target = workloads.parse_size(size)
            n = max(workloads.numel(workloads.SHAPES[w](target)) for w in names)
            bar.set_description(f"floor {key}")
            before = measure_floor(n, opts.device)
            bar.update()
            rows = []
            for wname in names:
                bar.set_description(f"generate {wname} {size}")
                wl = workloads.make(wname, size, device=opts.device, seed=opts.seed)
                label = wname if wname in workloads.FIXED else f"{wname} {size}"
                rows += [(label, run_case(case, wl, opts, bar)) for case in cases]
                del wl
                gc.collect()
            # The probes run again after the ops: a shared machine's bandwidth drifts, and
            # the floor is the best each probe reached on either side of them.
            bar.set_description(f"floor {key}, again")
            floor = best_of(before, measure_floor(n, opts.device))
            out["floors"][key] = floor.as_dict()
            bar.update()
            for label, row in rows:
                rate(row, floor)
                out["results"].append(row)
                if row["x_floor"] < BELOW_FLOOR:
                    row["below_floor"] = True
                    out["warnings"].append(
                        f"{row['op']} {label} ran at {row['x_floor']:.2f}x its floor: "
                        f"faster than the bandwidth probe, so the probe is wrong")
            if not opts.memory:
                continue
            for wname in names:
                for case in cases:
                    bar.set_description(f"peak memory {case.name} {wname} {size}")
                    out["peak_memory"].append(peakmem.measure(
                        case.name, wname, size, opts.device, torch.get_num_threads()))
                    bar.update()
    return out
