"""Iterative magnitude pruning end to end: IMPConfig (and the papers' presets), the level loop
with its controls, resumable runs in a directory (see driver.py for its layout).

    from lth_fast.imp import preset, run_imp
    metrics = run_imp(preset("lenet_mnist5k", levels=5), "runs/lenet")
"""
from .config import IMPConfig
from .driver import IMPRun, run_imp
from .presets import DEFAULT_PRESET, PRESETS, preset

__all__ = ["IMPConfig", "IMPRun", "run_imp", "PRESETS", "DEFAULT_PRESET", "preset"]
