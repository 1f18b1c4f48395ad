"""Real multi-process runs for the distributed tests: `run_ranks(world, fn, arg)` spawns
`world` processes (gloo on CPU, a file rendezvous, one thread each), calls fn(rank, world, arg)
in each (fn must be importable, e.g. from dist_workers), and returns every rank's result, in
rank order. A rank that raises fails the test with its traceback; a deadlock fails it after
`timeout` seconds instead of hanging the suite."""
from __future__ import annotations

import datetime
import os
import pickle
import tempfile
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _entry(rank, world, fn, arg, root):
    torch.set_num_threads(1)
    out = os.path.join(root, f"rank{rank}.pkl")
    try:
        dist.init_process_group("gloo", init_method=f"file://{os.path.join(root, 'store')}",
                                rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=60))
        try:
            result = ("ok", fn(rank, world, arg))
        finally:
            dist.destroy_process_group()
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        result = ("error", traceback.format_exc())
    with open(out + ".tmp", "wb") as f:
        pickle.dump(result, f)
    os.replace(out + ".tmp", out)


def run_ranks(world: int, fn, arg=None, timeout: float = 180.0):
    with tempfile.TemporaryDirectory() as root:
        ctx = mp.start_processes(_entry, args=(world, fn, arg, root), nprocs=world, join=False,
                                 start_method="spawn")
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        while not ctx.join(timeout=1.0):
            if datetime.datetime.now() > deadline:
                for p in ctx.processes:
                    p.kill()
                raise AssertionError(f"{world} ranks did not finish within {timeout} s "
                                     f"(a deadlock?)")
        results = []
        for r in range(world):
            with open(os.path.join(root, f"rank{r}.pkl"), "rb") as f:
                status, value = pickle.load(f)
            if status != "ok":
                raise AssertionError(f"rank {r} of {world} failed:\n{value}")
            results.append(value)
        return results
