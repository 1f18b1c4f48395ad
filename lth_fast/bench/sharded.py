"""`lth-fast bench --ranks N`: sharded prune_ on N local gloo processes (one thread each), each
holding torch.chunk(dim 0) shards of every tensor of a workload, against single-process
prune_ on one thread over rank 0's shards, measured in the same run; plus every collective
a call issues (count, bytes each rank sends). Each repetition starts on a barrier, and a
call takes as long as its slowest rank. With a core per rank, each rank is bound to its own."""
from __future__ import annotations

import statistics
import time
from typing import Dict, List

import torch

from . import workloads


def _shards(name: str, size: str, seed: int, world: int, rank: int):
    """Rank's shards of the workload: the same full tensors on every rank, then its chunk."""
    from ..distributed import chunk_rows
    wl = workloads.make(name, size, seed=seed, save=False)
    out_w, out_m = [], []
    for w, m in zip(wl.weights, wl.masks):
        start, count = chunk_rows(w.shape[0], world, rank)
        out_w.append(w[start:start + count].clone())
        out_m.append(m[start:start + count].clone())
    return out_w, out_m


def _rank_run(rank: int, world: int, spec: Dict) -> Dict:
    import torch.distributed as dist

    from .. import distributed as ltd
    weights, masks = _shards(spec["workload"], spec["size"], spec["seed"], world, rank)
    saved = [m.clone() for m in masks]
    times = []
    for rep in range(spec["warmup"] + spec["reps"]):
        for m, s in zip(masks, saved):
            m.copy_(s)
        dist.barrier()
        with ltd.audit() as calls:
            t = time.perf_counter()
            ltd.prune_(weights, masks, spec["amount"], group=dist.group.WORLD)
            dt = time.perf_counter() - t
        if rep >= spec["warmup"]:
            times.append(dt)
    return {"times": times, "calls": [(c.kind, str(c.dtype), c.numel, c.nbytes) for c in calls],
            "params": sum(w.numel() for w in weights)}


def _single(spec: Dict, world: int) -> Dict:
    """prune_ on one thread in this process, over rank 0's shards."""
    from ..ops import prune_
    weights, masks = _shards(spec["workload"], spec["size"], spec["seed"], world, 0)
    saved = [m.clone() for m in masks]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        for rep in range(spec["warmup"] + spec["reps"]):
            for m, s in zip(masks, saved):
                m.copy_(s)
            t = time.perf_counter()
            prune_(weights, masks, spec["amount"])
            if rep >= spec["warmup"]:
                times.append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)
    return {"times": times, "params": sum(w.numel() for w in weights)}


def run(sizes: List[str], workload_names: List[str], ranks: int, reps: int, warmup: int,
        seed: int, amount: float = 0.2) -> Dict:
    from ..distributed.launch import run_local
    results = []
    for size in sizes:
        for name in workload_names:
            spec = dict(size=size, workload=name, seed=seed, reps=reps, warmup=warmup,
                        amount=amount)
            single = _single(spec, ranks)
            per_rank = run_local(ranks, _rank_run, spec, timeout=600, pin=True)
            call_ms = [max(r["times"][i] for r in per_rank) * 1e3 for i in range(reps)]
            single_ms = statistics.median(single["times"]) * 1e3
            calls = per_rank[0]["calls"]
            results.append({
                "workload": name, "size": size, "ranks": ranks,
                "params": sum(r["params"] for r in per_rank),
                "shard_params": single["params"],
                "sharded_median_ms": statistics.median(call_ms),
                "single_thread_median_ms": single_ms,
                "x_single": statistics.median(call_ms) / single_ms,
                "sharded_ms": call_ms, "single_ms": [t * 1e3 for t in single["times"]],
                "collectives": [{"kind": k, "dtype": d, "numel": n, "bytes": b}
                                for k, d, n, b in calls],
                "bytes_sent": sum(b for *_, b in calls),
            })
    return {"kind": "sharded prune_", "amount": amount, "results": results}


def markdown(data: Dict) -> str:
    header = ["workload", "params", "ranks", "shard", "sharded ms", "1-thread ms on a shard",
              "× 1 thread", "collectives", "bytes sent per rank"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for r in data["results"]:
        kinds = ", ".join(f"{c['kind']} {c['bytes'] / 1024:.1f} KB" for c in r["collectives"])
        lines.append(f"| {r['workload']} | {r['params'] / 1e6:.3g}M | {r['ranks']} | "
                     f"{r['shard_params'] / 1e6:.3g}M | {r['sharded_median_ms']:.1f} | "
                     f"{r['single_thread_median_ms']:.1f} | {r['x_single']:.2f} | "
                     f"{len(r['collectives'])} ({kinds}) | {r['bytes_sent'] / 1024:.1f} KB |")
    return "\n".join(lines)
