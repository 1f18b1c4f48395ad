"""Which machine a benchmark script ran on, for its results file: lscpu's model name, and the
kind as benchmarks/results names files (intel-xeon-avx512-2core, amd-epyc-2core, ...)."""
from __future__ import annotations

import os
import platform
import subprocess

import lth_fast


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def machine_kind(cpu: str) -> str:
    words = [w for w in ("intel", "amd", "xeon", "epyc") if w in cpu.lower()] or ["cpu"]
    isa = lth_fast.cpu_isa()
    return "-".join(words + ([isa] if isa == "avx512" else []) + [f"{os.cpu_count()}core"])
