"""Runs a function on `world` local processes joined by gloo: for tests, benchmarks and trying
sharded selection on one machine without torchrun. Each rank gets one thread (a 2-core machine
runs 2 to 4 ranks), a file rendezvous, and a collective timeout; a rank that raises, or a
world that does not finish within `timeout` seconds (a deadlock), raises here with the
rank's traceback instead of hanging."""
from __future__ import annotations

import datetime
import os
import pickle
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, List

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


class RanksFailed(RuntimeError):
    """A rank raised, or the world did not finish in time."""


def _entry(rank: int, world: int, fn, arg, root: str, threads: int, pin: bool) -> None:
    cores = sorted(os.sched_getaffinity(0))
    if pin and world <= len(cores):  # before any thread starts, so all of them inherit it
        os.sched_setaffinity(0, {cores[rank]})
    torch.set_num_threads(threads)
    out = os.path.join(root, f"rank{rank}.pkl")
    try:
        dist.init_process_group("gloo", init_method=f"file://{os.path.join(root, 'store')}",
                                rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=60))
        try:
            result = ("ok", fn(rank, world, arg))
        finally:
            dist.destroy_process_group()
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        result = ("error", traceback.format_exc())
    with open(out + ".tmp", "wb") as f:
        pickle.dump(result, f)
    os.replace(out + ".tmp", out)
    # Leave without the interpreter's teardown: a communication thread still joinable at exit
    # aborts the process (std::terminate) after its work is done and reported.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_local(world: int, fn: Callable[[int, int, Any], Any], arg: Any = None, *,
              timeout: float = 180.0, threads: int = 1, pin: bool = False) -> List[Any]:
    """fn(rank, world, arg) on each of `world` spawned processes (fn must be importable by
    name, as multiprocessing's spawn requires); returns every rank's result, in rank order.
    pin: each rank (all its threads, the communication ones too) on a core of its own, when
    there are as many."""
    with tempfile.TemporaryDirectory() as root:
        ctx = mp.start_processes(_entry, args=(world, fn, arg, root, threads, pin), nprocs=world,
                                 join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                for p in ctx.processes:
                    p.kill()
                raise RanksFailed(f"{world} ranks did not finish within {timeout:.0f} s "
                                  f"(a deadlock?)")
        results = []
        for r in range(world):
            with open(os.path.join(root, f"rank{r}.pkl"), "rb") as f:
                status, value = pickle.load(f)
            if status != "ok":
                raise RanksFailed(f"rank {r} of {world} failed:\n{value}")
            results.append(value)
        return results
