"""Real multi-process runs for the distributed tests: run_ranks(world, fn, arg) runs
fn(rank, world, arg) on `world` gloo processes (lth_fast.distributed.launch.run_local; fn
must be importable, e.g. from dist_workers) and returns every rank's result; a rank's
exception or a deadlock fails the test with the rank's traceback instead of hanging."""
from __future__ import annotations

from lth_fast.distributed.launch import RanksFailed, run_local


def run_ranks(world: int, fn, arg=None, timeout: float = 180.0):
    try:
        return run_local(world, fn, arg, timeout=timeout)
    except RanksFailed as e:
        raise AssertionError(str(e)) from None
