"""Several seeds of one experiment run level by level together, so that a rule over all of them
(the --stop-below rule on the seeds' mean) decides whether the next level runs. Each seed has
its own run directory, resumable as a single run's."""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

from .config import IMPConfig
from .driver import IMPRun
from .matching import first_below, level_results
from .report import summary_rows


def run_lockstep(runs: Sequence[Tuple[IMPConfig, str]], *, stop_below: Optional[float] = None,
                 progress: bool = True, log: Callable[[str], None] = print,
                 overwrite: bool = False) -> List[List[dict]]:
    """Runs (or resumes) every (config, run directory) level by level: level L of every seed,
    then the stop rule on the means, then level L + 1. Returns each run's metrics."""
    imps = [IMPRun(cfg, d, progress=progress, log=log, overwrite=overwrite) for cfg, d in runs]
    started: List[IMPRun] = []
    try:
        for i, imp in enumerate(imps):
            imp.begin(position=i)
            started.append(imp)
        for level in range(max(imp.cfg.pruning.levels for imp in imps) + 1):
            if stop_below is not None and first_below(
                    level_results([summary_rows(imp.metrics) for imp in imps]),
                    stop_below) is not None:
                break
            for imp in imps:
                if len(imp.metrics) == level and level <= imp.cfg.pruning.levels:
                    imp.run_level(level)
    finally:
        for imp in started:
            imp.close()
    return [imp.finish() for imp in imps]


__all__ = ["run_lockstep"]
