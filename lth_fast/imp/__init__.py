"""Iterative magnitude pruning end to end: IMPConfig (in groups, and the papers' presets), the
level loop with its branches (the ticket and the controls), criteria and analyses as registries
of small files, resumable runs in a directory (see run_dir.py for its layout, and
docs/architecture.md for the whole).

    from lth_fast.imp import preset, run_imp
    metrics = run_imp(preset("lenet_mnist5k", levels=5), "runs/lenet")
"""
from .analyses import ANALYSES
from .analyses.export import ExportUsageError, export_run
from .branches import BRANCHES
from .config import IMPConfig
from .criteria import CRITERIA
from .driver import IMPRun, run_imp
from .presets import DEFAULT_PRESET, PRESETS, preset

__all__ = ["ANALYSES", "BRANCHES", "CRITERIA", "ExportUsageError", "IMPConfig", "IMPRun",
           "export_run", "run_imp", "PRESETS", "DEFAULT_PRESET", "preset"]
