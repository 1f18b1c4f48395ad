"""`lth-fast instability RUN_DIR --level L[,L...] --at K1,K2,... [--repeats R] [--points P]`:
instability analysis (linear mode connectivity, Frankle et al. 2020) of finished levels of an
IMP run. Level 0 is the dense network; level L >= 1 its masks on the dense weights at iteration
k (the IMP subnetwork rewound to k). For each k, R pairs of children train from there to the
run's last iteration, differing only in data order (lth_fast.imp.instability), and the line
between each pair is evaluated at P evenly spaced alphas.

Output, in RUN_DIR/analyses/instability/: instability.csv (tidy: level,k,repeat,split,alpha,
error,loss), summary.csv (per level and k: the barriers' mean and std over repeats, both ends'
errors, stable or not), barrier.png, paths.png; and level_LL/k_KKKKKK/, the children's weights
and lines, so a killed analysis restarted with the same command ends with the same files.

Under torchrun the children train one after another, each data-parallel over the ranks (DDP) as
a run's level does; rank 0 writes (docs/instability.md)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

from ... import atomic
from ...devices import check_device
from ..build import new_model, new_pruner
from ..instability.barrier import DEFAULT_THRESHOLD, TIDY, summary_rows, write_csv
from ..instability.children import Subnetwork
from ..instability.line import SPLITS, batchnorms
from ..instability.pairs import BN_MODES, bn_treatment, subnetwork_rows
from ..instability.plots import barrier_plot, path_plot
from ..parallel import Parallel, reports
from ..points import weights_at
from ..run_dir import RunDir
from ..tasks import load_task
from .base import ANALYSES, Analysis

NAME = "instability"
BN_BATCHES = 10


class InstabilityUsageError(ValueError):
    """A wrong argument: one line, status 2 at the command line, nothing written."""


def _check(run_dir, levels, ks, repeats, points, bn, bn_batches, stable_below):
    if not os.path.isdir(run_dir):
        raise InstabilityUsageError(f"{run_dir}: no such run directory")
    if not levels or any(lv < 0 for lv in levels) or len(set(levels)) != len(levels):
        raise InstabilityUsageError(f"--level must be distinct levels >= 0, got {levels}")
    if not ks or any(k < 0 for k in ks) or len(set(ks)) != len(ks):
        raise InstabilityUsageError(f"--at must be distinct iterations >= 0, got {ks}")
    if points < 2:
        raise InstabilityUsageError(f"--points must be >= 2 (both ends of the line), got "
                                    f"{points}")
    if not 1 <= repeats <= 100:
        raise InstabilityUsageError(f"--repeats must be in [1, 100], got {repeats}")
    if bn not in BN_MODES:
        raise InstabilityUsageError(f"BatchNorm statistics must be one of {BN_MODES}, got "
                                    f"{bn!r}")
    if bn_batches < 1:
        raise InstabilityUsageError(f"--bn-batches must be >= 1, got {bn_batches}")
    if stable_below is not None and not stable_below > 0:
        raise InstabilityUsageError(f"--stable-below must be > 0, got {stable_below}")
    files = RunDir(run_dir)
    cfg = files.read_config()
    if cfg is None:
        raise InstabilityUsageError(f"{run_dir} is not an lth-fast imp run directory (it has "
                                    f"no config.json)")
    done = files.finished_levels(log=lambda _: None)
    for lv in levels:
        if lv >= len(done):
            have = f"levels 0..{len(done) - 1} are" if done else "no level is"
            raise InstabilityUsageError(f"--level {lv}: level {lv} of {run_dir} is not "
                                        f"finished ({have})")
    last = cfg.training.iterations
    for k in ks:
        if k >= last:
            raise InstabilityUsageError(f"--at {k}: k must be below the run's last iteration "
                                        f"({last}, training.iterations), so the children train")
    return files, cfg, done


def instability(run_dir, levels: Sequence[int], ks: Sequence[int], repeats: int = 2,
                points: int = 30, bn: str = "recompute", bn_batches: Optional[int] = None,
                stable_below: Optional[float] = None, log=print) -> List[dict]:
    """Runs (or finishes) the analysis; returns the summary rows. bn: "recompute" the
    BatchNorm statistics at each alpha on bn_batches training batches (default 10), or keep
    the "interpolate"d ones; stable_below: the rule's threshold (a classifier's test error
    barrier, default 0.02; a language model's loss barrier as a share of its endpoint loss)."""
    run_dir, levels, ks = os.fspath(run_dir), list(levels), list(ks)
    files, cfg, done = _check(run_dir, levels, ks, repeats, points, bn,
                              BN_BATCHES if bn_batches is None else bn_batches, stable_below)
    check_device(cfg.run.device)
    par = Parallel.from_env(False, cfg.run.device)
    device = par.device(cfg.run.device)
    log = log if par.main else (lambda _: None)
    task = load_task(cfg)
    corpus = getattr(task, "corpus", None)
    if corpus is not None:   # the text the run read, or a one-line error
        cfg = cfg.with_corpus(corpus.sha256, corpus.python)

    def make(seed):
        model = par.wrap(new_model(cfg, task, seed, device))
        return model, new_pruner(par.inner(model), cfg)

    shape = make(0)   # the architecture, to check the flags and the masks against
    has_bn = bool(batchnorms(shape[0]))
    if (bn != "recompute" or bn_batches is not None) and not has_bn:
        raise InstabilityUsageError(f"the BatchNorm flags apply to models with BatchNorm; "
                                    f"{cfg.model.name} has none")
    bn_batches = BN_BATCHES if bn_batches is None else bn_batches
    masks = {lv: _masks(files, lv, shape[1].names) for lv in levels if lv > 0}
    treatment = bn_treatment(shape[0], bn, bn_batches)
    root = RunDir(run_dir).analysis_dir(NAME)   # only now: bad input wrote nothing
    kept = set(done[0].get("points", ()))
    tidy, info = [], {}
    for k in ks:
        rel = RunDir.point_rel(k)
        w_k = files.load_state(rel, 0, "cpu") if k in kept else weights_at(cfg, k, task=task)
        w_sum = atomic.content_sha256(w_k)
        for lv in levels:
            folder = os.path.join(root, f"level_{lv:02d}", f"k_{k:06d}")
            m = masks.get(lv)
            source = {"weights": w_sum, "masks": None if m is None else m[1]}
            sub = Subnetwork(cfg, task, k, w_k, None if m is None else m[0], make, device,
                             source, par)
            log(f"instability: level {lv} ({done[lv]['remaining']:.1f}% left), k={k}")
            tidy += subnetwork_rows(sub, folder, lv, repeats, points, bn, bn_batches, SPLITS,
                                    log)
            info[(lv, k)] = {"remaining": round(done[lv]["remaining"], 3), "repeats": repeats,
                             "points": points,
                             "batchnorm": treatment}
    tidy.sort(key=lambda r: (levels.index(r["level"]), ks.index(r["k"]), r["repeat"],
                             SPLITS.index(r["split"]), r["alpha"]))
    threshold = DEFAULT_THRESHOLD if stable_below is None else stable_below
    summary = summary_rows(tidy, task.kind, threshold, info)
    if par.main:
        write_csv(os.path.join(root, "instability.csv"), tidy, TIDY)
        write_csv(os.path.join(root, "summary.csv"), summary)
        title = f"instability: {cfg.model.name} on {cfg.data.dataset}, seed {cfg.seed}"
        barrier_plot(os.path.join(root, "barrier.png"), summary, task.kind, threshold, title)
        path_plot(os.path.join(root, "paths.png"), tidy, title)
    par.barrier()
    return summary


def _masks(files: RunDir, level: int, names):
    """A level's masks and their checksum, checked against the model's pruned tensors."""
    saved = files.load_masks(level)
    names = list(names)
    if list(saved.names) != names:
        raise InstabilityUsageError(f"level {level}'s masks are for {list(saved.names)[:3]}..., "
                                    f"not the model's pruned tensors {names[:3]}...")
    return saved, files.checksum(RunDir.level_rel(level, "masks.safetensors"), level)


def _ints(text: str) -> List[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="the directory of an lth-fast imp run")
    p.add_argument("--level", type=_ints, required=True, metavar="L[,L...]",
                   help="finished levels to analyse: 0 the dense network, L >= 1 level L's "
                        "masks on the dense weights at iteration k")
    p.add_argument("--at", type=_ints, required=True, metavar="K1,K2,...",
                   help="the iterations k the children start from (each below the run's last)")
    p.add_argument("--repeats", type=int, default=2, help="pairs of children per k (2)")
    p.add_argument("--points", type=int, default=30,
                   help="evenly spaced alphas on the line, both ends included (30)")
    p.add_argument("--interpolated-bn", action="store_true",
                   help="keep the interpolated BatchNorm statistics at each alpha instead of "
                        "recomputing them on training batches")
    p.add_argument("--bn-batches", type=int, default=None,
                   help=f"training batches the BatchNorm statistics are recomputed on "
                        f"({BN_BATCHES})")
    p.add_argument("--stable-below", type=float, default=None, metavar="X",
                   help="stable when the test error barrier is below X (default 0.02); a "
                        "language model: its test loss barrier below X times the endpoint loss")


def summary_lines(summary: Sequence[dict]) -> List[str]:
    """The summary as a markdown table (test split; train beside it)."""
    text = any("loss barrier" in r["rule"] and "endpoint" in r["rule"] for r in summary)
    head = ["level", "left", "k", "test error barrier", "test loss barrier", "train error "
            "barrier", "stable"]
    out = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]

    def pm(mean, sd, scale, digits):
        return f"{scale * mean:.{digits}f}" + ("" if sd is None else f" ± {scale * sd:.{digits}f}")

    for r in summary:
        out.append("| " + " | ".join([
            str(r["level"]), f"{r['remaining']:.1f}%", str(r["k"]),
            pm(r["test_error_barrier_mean"], r["test_error_barrier_std"], 100, 2) + "%",
            pm(r["test_loss_barrier_mean"], r["test_loss_barrier_std"], 1, 4) + " nats",
            pm(r["train_error_barrier_mean"], r["train_error_barrier_std"], 100, 2) + "%",
            "yes" if r["stable"] else "no"]) + " |")
    out.append(f"\nmean ± std over {summary[0]['repeats']} repeats, {summary[0]['points']} "
               f"points; stable: {summary[0]['rule']}; BatchNorm: {summary[0]['batchnorm']}"
               + ("; error: 1 - next-character accuracy" if text else ""))
    return out


def run(args: argparse.Namespace) -> int:
    try:
        summary = instability(args.run_dir, args.level, args.at, args.repeats, args.points,
                              "interpolate" if args.interpolated_bn else "recompute",
                              args.bn_batches, args.stable_below)
    except InstabilityUsageError as e:
        if reports():   # under torchrun rank 0 reports
            print(f"lth-fast instability: {e}", file=sys.stderr)
        return 2
    if not reports():
        return 0
    for line in summary_lines(summary):
        print(line)
    print(f"wrote {RunDir(args.run_dir).file('analyses/' + NAME)}/ (instability.csv, "
          f"summary.csv, barrier.png, paths.png)")
    return 0


ANALYSES.register(Analysis(
    NAME, help="instability analysis (linear mode connectivity): train pairs of children from "
               "iteration k that differ in data order and measure the error barrier on the "
               "line between them",
    add_arguments=add_arguments, run=run))


__all__ = ["InstabilityUsageError", "instability", "summary_lines"]
