"""`--rewind auto`: before level 1, IMP measures the instability (lth_fast.imp.instability) of
level 1's subnetwork at each candidate rewind iteration k, rewinds to the smallest k whose
barrier is below the threshold (the largest candidate if none is), and records the probe.

    level 0        keeps its weights at every candidate (RUN_DIR/points/, checked as kept points)
    before level 1 level 1's masks (the run's own level step, undone), then for each candidate
                   PROBE_REPEATS pair of children and its line at PROBE_POINTS alphas on the
                   test split, kept in RUN_DIR/rewind_probe/ (a killed probe trains only the
                   children it had not finished); the choice in rewind_probe/probe.json
    levels >= 1    rewind to the chosen point; level 1's metrics.json holds the probe, and each
                   level lists points/iteration_K as the rewind point it read

A resumed run takes the probe from level 1's metrics (or probe.json, while level 0's checkpoint
is the one it was computed from), never running it again.

PROBE_REPEATS = 1 and PROBE_POINTS = 11: the children are the probe's whole cost (two trainings
from k to the end per candidate and repeat), so one pair per candidate: gpt_pydoc's candidates
0, 25, 100, 400 then cost 7.5 trainings of a level, 12.4% of a 2-seed sweep over them
(docs/instability.md); 11 alphas (steps of 0.1) include 0.5, where the
barrier of two minima is usually highest, and cost evaluations only."""
from __future__ import annotations

import json
import os
import time
from typing import List, Optional

from .. import atomic
from ..pruning.mask_set import MaskSet
from .instability.barrier import DEFAULT_THRESHOLD, rule_text, summary_rows
from .instability.children import Subnetwork
from .instability.pairs import subnetwork_rows
from .run_dir import CHECKPOINT, RunDir

PROBE_DIR, PROBE_RECORD = "rewind_probe", "rewind_probe/probe.json"
PROBE_REPEATS, PROBE_POINTS = 1, 11


def is_auto(cfg) -> bool:
    return cfg.pruning.rewind == "auto"


def kept_points(cfg) -> List[int]:
    """The iterations of level 0 whose weights are kept: run.keep_points, and the candidates."""
    extra = cfg.pruning.rewind_candidates if is_auto(cfg) else ()
    return sorted(set(cfg.run.keep_points) | set(extra))


def resolve(run) -> None:
    """Before level 1 (or on resuming past it): the probe's choice, from the record or by
    running it; then run.cfg rewinds to that k, and the Pruner's snapshot is W_k."""
    if not is_auto(run.cfg):
        return
    run.par.barrier()   # under torchrun: level 0's files, which rank 0 wrote, are there
    record = _recorded(run)
    if record is None:
        record = _probe(run)
        if run.par.main:
            atomic.write_json(run.files.file(PROBE_RECORD), record)
    k = record["chosen"]
    run.probe = record
    run.cfg = run.cfg.replace(rewind="iteration", rewind_iteration=k, rewind_candidates=(),
                              stable_below=None)
    run.rewind_rel = RunDir.point_rel(k)
    trained = {n: v.clone() for n, v in run.par.full_state(run.model).items()}
    run._load_state(run.rewind_rel, 0)   # W_k, then the trained weights back
    run.pruner.snapshot()
    run.par.load_full_state(run.model, trained)
    for line in probe_lines(record):
        run.log(line)


def _recorded(run) -> Optional[dict]:
    if len(run.metrics) > 1:   # level 1 finished: its metrics hold the probe
        return run.metrics[1]["rewind_probe"]
    try:
        with open(run.files.file(PROBE_RECORD), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    same = record.get("level0") == run.files.checksum(RunDir.level_rel(0, CHECKPOINT), 0)
    return record if same and record.get("candidates") == list(
        run.cfg.pruning.rewind_candidates) else None


def _level_one_masks(run) -> MaskSet:
    """Level 1's masks, drawn by the run's own level step on its lineage, which is then put
    back as it was (its weights and masks)."""
    trained = {n: v.clone() for n, v in run.par.full_state(run.model).items()}
    before = {n: m.clone() for n, m in run.pruner.masks.items()}
    run.step_level(1, {"prune": 0.0, "rewind": 0.0})
    masks = MaskSet(run.pruner.names, {n: m.clone() for n, m in run.pruner.masks.items()})
    for n, m in before.items():
        run.pruner.masks[n].copy_(m)
    run.par.load_full_state(run.model, trained)
    return masks


def _probe(run) -> dict:
    cfg, t0 = run.cfg, time.perf_counter()
    p = cfg.pruning
    threshold = DEFAULT_THRESHOLD if p.stable_below is None else p.stable_below
    masks = _level_one_masks(run)
    m_sum = atomic.content_sha256({n: masks.masks[n] for n in masks.names})
    rows, info = [], {}
    run.log(f"--rewind auto: probing level 1's subnetwork at k in {list(p.rewind_candidates)}")
    for k in p.rewind_candidates:
        w_k = run.files.load_state(RunDir.point_rel(k), 0, "cpu")
        sub = Subnetwork(cfg, run.task, k, w_k, masks, run.new_model, run.device,
                         {"weights": atomic.content_sha256(w_k), "masks": m_sum}, run.par)
        folder = os.path.join(run.files.file(PROBE_DIR), f"k_{k:06d}")
        rows += subnetwork_rows(sub, folder, 1, PROBE_REPEATS, PROBE_POINTS, "recompute", 10,
                                ("test",), run.log)
        info[(1, k)] = {"repeats": PROBE_REPEATS, "points": PROBE_POINTS}
    table = summary_rows(rows, run.task.kind, threshold, info)
    chosen, found = choose(table)
    last = cfg.training.iterations
    return {"candidates": list(p.rewind_candidates), "threshold": threshold,
            "rule": rule_text(run.task.kind, threshold), "repeats": PROBE_REPEATS,
            "points": PROBE_POINTS, "table": table, "chosen": chosen, "stable_found": found,
            "iterations": sum(2 * PROBE_REPEATS * (last - k) for k in p.rewind_candidates),
            "seconds": time.perf_counter() - t0,
            "level0": run.files.checksum(RunDir.level_rel(0, CHECKPOINT), 0)}


def choose(table: List[dict]):
    """(k, found): the smallest stable k of the probe's table, or the largest k and False."""
    stable = sorted(r["k"] for r in table if r["stable"])
    return (stable[0], True) if stable else (max(r["k"] for r in table), False)


def probe_lines(record: dict) -> List[str]:
    """The probe's table and its choice, as printed."""
    text = "endpoint" in record["rule"]
    lines = [f"--rewind auto: level 1's subnetwork, {record['repeats']} pair(s) of children "
             f"per candidate, {record['points']} points; stable: {record['rule']}"]
    for r in record["table"]:
        bar = (f"test loss barrier {r['test_loss_barrier_mean']:.4f} nats "
               f"({100 * r['test_loss_barrier_mean'] / r['test_loss_ends_mean']:.2f}% of "
               f"{r['test_loss_ends_mean']:.3f})" if text else
               f"test error barrier {100 * r['test_error_barrier_mean']:.2f}%")
        lines.append(f"  k={r['k']:>6}: {bar}, {'stable' if r['stable'] else 'unstable'}")
    if record["stable_found"]:
        lines.append(f"  rewinding every level to k={record['chosen']}, the smallest stable "
                     f"candidate (probe: {record['iterations']:,} training iterations)")
    else:
        lines.append(f"  no candidate is stable: rewinding every level to the largest, "
                     f"k={record['chosen']} (probe: {record['iterations']:,} training "
                     f"iterations)")
    return lines


__all__ = ["PROBE_DIR", "PROBE_POINTS", "PROBE_RECORD", "PROBE_REPEATS", "choose", "is_auto",
           "kept_points", "probe_lines", "resolve"]
