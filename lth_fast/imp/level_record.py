"""What a finished level leaves: its metrics (the counts left per pruned tensor, summed over
the ranks of a sharded model; every branch's results and timings) and its files (masks, the
ticket's weights, metrics.json last, as lth_fast.imp.run_dir documents them)."""
from __future__ import annotations

from typing import Dict, List

from .. import atomic
from ..distributed import unsharded
from ..ops.dtensors import is_sharded
from ..pruning import ticket
from ..pruning.mask_set import MaskSet
from .report import summary_rows, write_summary_csv
from .run_dir import CHECKPOINT, MASKS, METRICS, SUMMARY, RunDir
from .train import RunResult


def level_metrics(run, level: int, results: Dict[str, RunResult], secs: Dict[str, float],
                  wall: float) -> dict:
    """Level `level`'s metrics.json record. run: the IMPRun (its pruner, parallel layout and
    task); results: each branch's training; secs: the level's prune and rewind seconds, to
    which the branches' own are added; wall: the level's wall time."""
    report = run.pruner.report()  # a sharded model's counts summed over its ranks
    alive_l = run.par.sum_ints([r["alive"] for r in report])
    total_l = run.par.sum_ints([r["total"] for r in report])
    for r, a, t in zip(report, alive_l, total_l):
        r.update(alive=a, total=t, remaining=100.0 * a / t if t else 100.0)
    alive, total = sum(alive_l), sum(total_l)
    for r in results.values():
        for k, v in r.seconds.items():
            secs[k] = secs.get(k, 0.0) + v
    secs["level"] = wall
    test = getattr(getattr(run.task, "data", None), "test", None)
    return {"level": level, "remaining": 100.0 * alive / total, "alive": alive,
            "total": total, "layers": {r["name"]: r["remaining"] for r in report},
            # a classifier's test set size: the sampling error of one seed's accuracy
            **({"test_examples": len(test)} if test is not None else {}),
            "branches": {b: {**r.summary(), "seconds": r.seconds, "evals": r.evals}
                         for b, r in results.items()},
            "seconds": secs}


def save_level(run, level: int, metrics: dict, earlier: List[dict]) -> None:
    """Writes level `level`'s files (every rank calls it: a collective under FSDP2; rank 0
    writes), metrics.json last, and summary.csv with the `earlier` levels' metrics."""
    rel, par, files = RunDir.level_rel, run.par, run.files
    params = dict(par.inner(run.model).named_parameters())
    ms = run.pruner.mask_set
    masks = MaskSet(ms.names, {n: unsharded(ms.masks[n], params[n])
                               if is_sharded(params[n]) else ms.masks[n] for n in ms.names})
    state = par.full_state(run.model)
    if par.main:
        ticket.save_masks(files.file(rel(level, MASKS)), masks)
        atomic.save_tensors(files.file(rel(level, CHECKPOINT)), state)
        metrics["files"] = files.level_files(
            level, [RunDir.point_rel(k) for k in metrics.get("points", ())],
            rewind=run.rewind_rel)
        atomic.write_json(files.file(rel(level, METRICS)), metrics)  # last: the level is done
        write_summary_csv(files.file(SUMMARY), summary_rows(earlier + [metrics]))


__all__ = ["level_metrics", "save_level"]
