"""Benchmark harness: model-shaped workloads, timing against the machine's bandwidth floor,
a registry of op cases (fast vs reference vs other baselines) and the report. See docs/measuring.md.

`lth-fast bench` (lth_fast.cli) and the pytest-benchmark suites in benchmarks/ use it."""
from .measure import Floor, measure_floor, time_op
from .runner import Options, run
from .suite import OPS, OpCase, Impl, Prepared, register
from .workloads import Workload, make, parse_size

__all__ = ["Floor", "measure_floor", "time_op", "Options", "run", "OPS", "OpCase", "Impl",
           "Prepared", "register", "Workload", "make", "parse_size"]
