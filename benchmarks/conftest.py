"""Fixtures for the pytest-benchmark suites (benchmarks, not tests: nothing here asserts on time).

Run with `pytest benchmarks` (the default `pytest` run only collects tests/). The workload size is
LTH_FAST_BENCH_SIZE (default 10M); the device is LTH_FAST_BENCH_DEVICE (default cpu).
"""
import os

import pytest

from lth_fast.bench import measure_floor, workloads

SIZE = os.environ.get("LTH_FAST_BENCH_SIZE", "10M")
DEVICE = os.environ.get("LTH_FAST_BENCH_DEVICE", "cpu")


@pytest.fixture(scope="session", params=["resnet", "transformer"])
def workload(request):
    """A model-shaped weight/mask list with 20% already pruned; restore_masks() undoes a prune."""
    wl = workloads.make(request.param, SIZE, device=DEVICE)
    yield wl
    del wl


@pytest.fixture(scope="session")
def floor():
    """The bandwidth floor over buffers as large as the largest workload of this size."""
    target = workloads.parse_size(SIZE)
    n = max(workloads.numel(shapes(target)) for shapes in workloads.SHAPES.values())
    return measure_floor(n, DEVICE)


@pytest.fixture
def record_floor(benchmark, floor):
    """Call with (workload, bytes_per_param) after a run: adds GB/s and × floor to extra_info."""
    def record(wl, bytes_per_param):
        nbytes = bytes_per_param * wl.params
        info = benchmark.extra_info
        info.update(workload=wl.name, size=wl.size, params=wl.params,
                    bytes_per_param=bytes_per_param, floor_gbps=floor.bps / 1e9)
        stats = getattr(benchmark, "stats", None)
        if stats is not None and getattr(stats, "stats", None) is not None:
            med = stats.stats.median
            info.update(gbps=nbytes / med / 1e9, x_floor=med / floor.seconds(nbytes))
    return record
