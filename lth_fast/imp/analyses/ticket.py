"""`lth-fast ticket RUN_DIR [RUN_DIR ...]`: the sparsest ticket of finished IMP runs that still
matches the dense network (lth_fast.imp.matching: within DELTA of dense, and at or above
dense), with its level, density, result and files. Several run directories are seeds of one
experiment: the rule and the result use their means, with the spread over the seeds. The lines
printed are also written to the first RUN_DIR's analyses/ticket/ticket.txt."""
from __future__ import annotations

import argparse
import json
import os
from typing import List, Optional

from ... import atomic
from ..matching import WITHIN, describe, level_results, sparsest_matching
from ..same_experiment import check_seeds
from ..run_dir import CHECKPOINT, MASKS, METRICS, REWIND_POINT, RunDir, read_summary
from .base import ANALYSES, Analysis, add_run_dirs


def _test_examples(run_dir: str) -> Optional[int]:
    """A classifier's test set size, which level 0's metrics record (None if not)."""
    try:
        with open(os.path.join(run_dir, RunDir.level_rel(0, METRICS)), encoding="utf-8") as f:
            return json.load(f).get("test_examples")
    except (OSError, ValueError, AttributeError):
        return None


def rewind_rel(run_dir: str, level: int) -> str:
    """The rewind point `level` was rewound to: what its metrics list among the files it read,
    a kept point of level 0 under --rewind auto, else rewind_point.safetensors."""
    try:
        with open(os.path.join(run_dir, RunDir.level_rel(level, METRICS)),
                  encoding="utf-8") as f:
            files = json.load(f).get("files", {})
    except (OSError, ValueError, AttributeError):
        return REWIND_POINT
    points = [rel for rel in files if rel.startswith("points/")] if level > 0 else []
    return points[0] if len(points) == 1 else REWIND_POINT


def ticket_lines(run_dirs: List[str], delta: float) -> List[str]:
    check_seeds(run_dirs)
    runs = [read_summary(d) for d in run_dirs]
    results = level_results(runs, _test_examples(run_dirs[0]))
    lines = describe(results, delta)
    best = sparsest_matching(results, WITHIN, delta)
    if best is None:
        return lines
    lines.append(f"\nits files (level {best.level}):")
    for d in run_dirs:
        for rel, what in ((RunDir.level_rel(best.level, MASKS), "masks, 1 bit per weight"),
                          (RunDir.level_rel(best.level, CHECKPOINT), "the trained ticket"),
                          (rewind_rel(d, best.level), "the rewind point, to retrain it")):
            path = os.path.join(d, rel)
            size = f"{os.path.getsize(path):,} bytes" if os.path.exists(path) else "missing"
            lines.append(f"  {path}  ({what}; {size})")
    lines.append(f"ship it: lth-fast export {run_dirs[0]} --level {best.level} "
                 f"[--dtype float16]")
    return lines


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dirs(p, "a finished lth-fast imp run directory, or several: seeds of one "
                    "experiment")
    p.add_argument("--delta", type=float, default=1.0, metavar="DELTA",
                   help="a ticket within DELTA points of the dense accuracy matches (a "
                        "language model: within DELTA%% of the dense loss); default 1")


def run(args: argparse.Namespace) -> int:
    lines = ticket_lines(args.run_dirs, args.delta)
    for line in lines:
        print(line)
    out = os.path.join(RunDir(args.run_dirs[0]).analysis_dir("ticket"), "ticket.txt")
    atomic.write_text(out, "\n".join(lines) + "\n")
    return 0


ANALYSES.register(Analysis(
    "ticket", help="name the sparsest ticket of finished imp runs that still matches the dense "
                   "network (within DELTA, and at or above dense), with its files",
    add_arguments=add_arguments, run=run))


__all__ = ["rewind_rel", "ticket_lines"]
