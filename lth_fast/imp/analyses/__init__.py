"""Analyses: what reads a finished IMP run directory (or several: seeds of one experiment) and
reports on it, writing beside it, each a small file registered in ANALYSES and a subcommand of
`lth-fast` (lth_fast.cli). Their output goes to RUN_DIR/analyses/NAME/ (RunDir.analysis_dir),
where the run itself never reads.

An analysis is an Analysis record: its `name`, a one-line `help`, `add_arguments(parser)` and
`run(args) -> exit status`. A wrong argument is one line on stderr and status 2; the run
directory's files are read through lth_fast.imp.run_dir, checked."""
from __future__ import annotations

from .base import ANALYSES, Analysis
from . import ticket, seeds, export, instability  # noqa: F401  (each registers itself)

__all__ = ["ANALYSES", "Analysis"]
