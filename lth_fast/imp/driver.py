"""The IMP level loop: train -> prune -> rewind -> retrain, with controls at every pruned level,
all artifacts in one run directory (its files are documented in lth_fast.imp.run_dir),
resumable after a kill.

Level 0 trains the dense network and takes the rewind point (iteration 0 or k; and any other
iterations run.keep_points names). Level L >= 1 runs the ticket branch (the level step of
lth_fast.pruning.level on the previous level's trained ticket, then training) and each control
named in pruning.controls: every branch is a small file of lth_fast.imp.branches, every
criterion one of lth_fast.imp.criteria. Every random stream is a function of the run's seeds
(lth_fast.imp.streams), so a restarted run ends exactly as an uninterrupted one."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from .. import atomic
from ..tracking import LevelLog
from ..devices import check_device
from ..distributed import shard_of
from ..ops.dtensors import is_sharded
from ..pruning import Pruner
from ..pruning.early_bird import EarlyBird
from ..pruning.level import next_level
from . import rewind_probe, streams
from .branches import BRANCHES
from .criteria import CRITERIA, scoring
from .matching import first_below, level_results
from .report import headline, summary_rows, write_layer_plot, write_plot, write_summary_csv
from .build import level_rates, new_model, new_pruner
from .config import IMPConfig
from .level_record import level_metrics, save_level
from .parallel import Parallel
from .same_experiment import same_branches
from .run_dir import (CHECKPOINT, LAYER_PLOT, MASKS, PLOT, REWIND_POINT, SUMMARY,
                      RunDir, RunFileError)
from .tasks import load_task
from .train import RunResult, train_run


class IMPRun:
    """One experiment in one run directory; run() does it, or finishes it after a kill.
    overwrite=True starts the directory afresh (once the experiment has started).

    Lifecycle: begin() (device, data, the directory checked, finished levels resumed) ->
    run_level(L) for each level not finished (level 0: the dense network; L >= 1: the ticket
    and the controls) -> close() (the progress bar, TensorBoard) -> finish() (summary.csv and
    the plots). run() is all four; lth_fast.imp.lockstep runs several seeds level by level.

    What a branch (lth_fast.imp.branches) uses: cfg, par, device, task, model and pruner (the
    ticket's lineage, whose snapshot is the whole network at the rewind point), rewind_state,
    new_model(seed), masked_copy(seed, secs), same_sparsity(), step_level(level, secs) and
    train(model, pruner, start, level, label)."""

    def __init__(self, cfg: IMPConfig, run_dir, *, progress: bool = True,
                 log: Callable[[str], None] = print, overwrite: bool = False,
                 fsdp: bool = False, tensorboard: Optional[str] = None) -> None:
        self.cfg, self.dir, self.progress, self.log = cfg, os.fspath(run_dir), progress, log
        self.files, self.overwrite, self.fsdp = RunDir(run_dir), overwrite, fsdp
        self.tensorboard = None if tensorboard is None else os.fspath(tensorboard)
        # set by begin()
        self.par: Optional[Parallel] = None
        self.device = None
        self.task = None
        self.tracker: Optional[LevelLog] = None
        self.metrics: List[dict] = []        # every finished level's, in order
        self.model: Optional[nn.Module] = None
        self.pruner: Optional[Pruner] = None
        self.rates: Optional[Dict[str, float]] = None
        self.bar = None
        # --rewind auto (lth_fast.imp.rewind_probe): the probe's record once it has chosen, and
        # the file the pruned levels rewind to
        self.probe: Optional[dict] = None
        self.rewind_rel = REWIND_POINT

    @property
    def rewind_state(self) -> Dict[str, torch.Tensor]:
        """This rank's part of every tensor at the rewind point (the ticket's Pruner's whole
        snapshot, taken at level 0 or on resume)."""
        return self.pruner.rewind_state

    @property
    def late(self) -> bool:
        """Late rewinding: the rewind point is iteration k > 0 of level 0."""
        p = self.cfg.pruning
        return p.rewind != "init" and p.rewind_iteration > 0

    def _check_config(self) -> bool:
        """Refuses a run directory of another experiment; True when config.json is to be
        (re)written: a new directory, or other levels (a run can be extended)."""
        old = None if self.overwrite else self.files.read_config()
        if old is None:
            return True
        # more (or fewer) levels leave the earlier ones as they are: a run can be extended; the
        # same text read by another Python (its checksum is compared) is the same experiment;
        # the levels some branches train at (--pai-levels) may change beyond the run's levels
        extends = ("pruning.levels:", "data.text_python:") + (
            ("pruning.pai_levels:",) if same_branches(old, self.cfg) else ())
        diff = [d for d in old.differences(self.cfg) if not d.startswith(extends)]
        if diff:
            raise ValueError(f"{self.dir} holds a different experiment ({'; '.join(diff)}); "
                             f"give another run directory, the same settings, or --overwrite")
        return (old.pruning.levels, old.pruning.pai_levels) != (
            self.cfg.pruning.levels, self.cfg.pruning.pai_levels)

    def _finished(self) -> List[dict]:
        """The finished levels to keep. A smaller --levels than those finished is refused: it
        would delete trained levels, or leave summary.csv, imp.png and config.json saying
        something else than the level folders."""
        if self.overwrite:
            return []
        done = self.files.finished_levels(self.log)
        levels = self.cfg.pruning.levels
        if len(done) > levels + 1:
            raise ValueError(f"{self.dir} has levels 0..{len(done) - 1} finished; levels="
                             f"{levels} would drop the later ones: give --levels "
                             f"{len(done) - 1} or more, or --overwrite to start afresh")
        return done

    # -- the experiment ----------------------------------------------------------------------
    def run(self, stop_below: Optional[float] = None) -> List[dict]:
        """Runs the levels not yet finished; with stop_below (DELTA), stops after the first
        pruned level whose ticket falls more than DELTA below dense (lth_fast.imp.matching)."""
        self.begin()
        try:
            for level in range(len(self.metrics), self.cfg.pruning.levels + 1):
                if stop_below is not None and self.below(stop_below) is not None:
                    break
                self.run_level(level)
        finally:
            self.close()
        return self.finish()

    def begin(self, position: int = 0) -> None:
        """Everything before the first level: device, data, the run directory checked (and
        cleared with overwrite), the finished levels resumed, the progress bar."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        check_device(cfg.run.device)
        self.files.check_folders()   # before the data loads: a file in the way is an error now
        if self.tensorboard is not None and os.path.exists(self.tensorboard) and \
                not os.path.isdir(self.tensorboard):
            raise ValueError(f"tensorboard directory {self.tensorboard} is a file: give "
                             f"another path")
        self.par = par = Parallel.from_env(self.fsdp, cfg.run.device)
        par.check_batch(cfg.training.batch_size)
        self.device = par.device(cfg.run.device)
        if not par.main:
            self.log, self.progress = (lambda *_: None), False
        self.task = load_task(cfg)
        corpus = getattr(self.task, "corpus", None)
        if corpus is not None:  # the text's checksum joins the config (and its check)
            self.cfg = cfg = cfg.with_corpus(corpus.sha256, corpus.python)
        new_config = self._check_config()
        done = self._finished()
        # once the run directory is accepted, and before anything is written or trained: a
        # missing tensorboard package is an error now
        self.tracker = LevelLog.tensorboard(self.tensorboard) if (
            self.tensorboard is not None and par.main) else None
        self.metrics = list(done)  # grows as levels finish
        self.log(f"IMP: {cfg.model.name} on {self.task.describe()}; levels 0.."
                 f"{cfg.pruning.levels} in {self.dir}"
                 + (f", resuming after level {len(done) - 1}" if done else "")
                 + (f"; {par.world} ranks ({par.mode})" if par.world > 1 else ""))
        self.model, self.pruner = self.new_model(streams.init(cfg.seed))
        self.rates = level_rates(cfg, par.inner(self.model), self.pruner)
        if done:
            self._resume(len(done) - 1)
        if len(done) > 1:   # past level 1: rewind to the point the probe chose
            rewind_probe.resolve(self)
        # only once the data loads, the device exists and the model builds
        if self.overwrite and par.main:
            self.files.clear()
        par.barrier()  # nobody writes before every rank has read what was there
        if new_config and par.main:
            self.files.write_config(cfg)
        todo = sum(cfg.training.iterations if lv == 0 else
                   sum(BRANCHES[b].iterations(cfg) for b in self.branches_at(lv))
                   for lv in range(len(done), cfg.pruning.levels + 1))
        self.bar = tqdm(total=todo, desc="IMP", unit="it", disable=not self.progress,
                        dynamic_ncols=True, leave=False, position=position,
                        mininterval=0.1 if sys.stderr.isatty() else 10.0)  # logs: fewer lines

    def branches_at(self, level: int) -> List[str]:
        """The branches pruned level `level` trains: the ticket, then the controls that run
        there (Branch.runs_at)."""
        return ["ticket"] + [b for b in self.cfg.pruning.controls
                             if BRANCHES[b].runs_at(self.cfg, level)]

    def run_level(self, level: int) -> dict:
        """Trains, saves and reports level `level` (the next one not finished)."""
        if level >= 1:
            rewind_probe.resolve(self)   # --rewind auto: choose k before level 1 (once)
        metrics = self._dense_level() if level == 0 else self._pruned_level(level)
        if level == 1 and self.probe is not None:
            metrics["rewind_probe"] = self.probe
        self._save_level(level, metrics)
        self._track(metrics)
        self.bar.set_postfix_str(f"level {level}: {metrics['remaining']:.1f}% left, "
                                 f"ticket {headline(metrics['branches']['ticket'])}",
                                 refresh=False)
        return metrics

    def below(self, delta: float):
        """The first pruned level finished so far whose ticket falls more than `delta` below
        dense (lth_fast.imp.matching), or None."""
        return first_below(level_results([summary_rows(self.metrics)]), delta)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None

    def finish(self) -> List[dict]:
        """The derived files (summary.csv and the plots), whether or not a level ran now."""
        cfg, par = self.cfg, self.par
        rows = summary_rows(self.metrics)
        title = f"IMP: {cfg.model.name} on {cfg.data.dataset}"
        if par.main:
            write_summary_csv(self.files.file(SUMMARY), rows)
            write_plot(self.files.file(PLOT), rows, title=title)
            write_layer_plot(self.files.file(LAYER_PLOT), rows,
                             title=f"{title}, weights left per layer")
        par.barrier()
        return list(self.metrics)

    def _track(self, metrics: dict) -> None:
        """The level's scalars to TensorBoard, at its density (lth_fast.tracking)."""
        if self.tracker is None:
            return
        branches = {b: {k: v for k, v in r.items() if k not in ("seconds", "evals")}
                    for b, r in metrics["branches"].items()}
        self.tracker.level(metrics["level"], metrics["remaining"] / 100, branches,
                           {n: left / 100 for n, left in metrics["layers"].items()})

    # -- what branches use -------------------------------------------------------------------
    def new_model(self, seed: int):
        """A fresh model initialised from `seed` (wrapped for this run's layout) and its
        Pruner."""
        model = self.par.wrap(new_model(self.cfg, self.task, seed, self.device))
        return model, new_pruner(self.par.inner(model), self.cfg)

    def masked_copy(self, seed: int, secs: Dict[str, float]):
        """A fresh model from `seed` under the ticket's current masks (pruned entries 0)."""
        model, pruner = self.new_model(seed)
        t0 = time.perf_counter()
        for n in pruner.names:
            pruner.masks[n].copy_(self.pruner.masks[n])
        pruner.apply()
        secs["rewind"] += time.perf_counter() - t0
        return model, pruner

    def same_sparsity(self) -> dict:
        """Pruner.prune's keywords that prune fresh masks to the ticket's sparsity in every
        tensor (the counts summed over the ranks of a sharded model), or to the same N:M
        pattern."""
        rule = self.cfg.pruning.rule
        if rule.scope == "nm":
            return rule.args(None)
        names = self.pruner.names
        counts = self.par.sum_ints([int(self.pruner.masks[n].numel() - self.pruner.masks[n].sum())
                                    for n in names])
        return dict(amount=0, scope="layer", per_layer=dict(zip(names, counts)))

    def step_level(self, level: int, secs: Dict[str, float]) -> None:
        """The level step on the ticket's lineage (lth_fast.pruning.level.next_level): prune by
        the run's criterion and rule, then rewind (but with rewind "lr")."""
        cfg = self.cfg
        t0 = time.perf_counter()
        scores = CRITERIA[cfg.pruning.criterion].scores(scoring(
            self.pruner, streams.branch(cfg.seed, BRANCHES["ticket"].tag, level), self.task,
            self.device, cfg.pruning))
        secs["prune"] += time.perf_counter() - t0
        rewind = cfg.pruning.rewind != "lr"  # learning-rate rewinding keeps the trained weights
        next_level(self.pruner, cfg.pruning.rule.args(self.rates), rewind=rewind,
                   verify=self.par.mode == "ddp", scores=scores, seconds=secs)

    def train(self, model, pruner, start: int, level: int, label: str, on_iteration=None,
              stop_after_eval=None) -> RunResult:
        self.bar.set_description(f"IMP level {level}/{self.cfg.pruning.levels} {label}",
                                 refresh=False)
        return train_run(model, pruner, self.task, self.cfg, start=start,
                         on_iteration=on_iteration, stop_after_eval=stop_after_eval,
                         progress=self.bar, parallel=self.par)

    # -- the rewind point and resuming -------------------------------------------------------
    def _resume(self, level: int) -> None:
        """The state after `level`: the rewind point (as the pruner's snapshot), the level's
        masks, and its ticket's trained weights (what the next level prunes)."""
        self._load_state(REWIND_POINT, 0)
        self.pruner.snapshot()
        saved = self.files.load_masks(level)
        if list(saved.names) != list(self.pruner.names):
            raise RunFileError(f"{self.files.shown(RunDir.level_rel(level, MASKS))} is for "
                               f"{list(saved.names)}, not for {list(self.pruner.names)}: "
                               f"{self.files.redo(level)}")
        params = dict(self.par.inner(self.model).named_parameters())
        for n in saved.names:  # a sharded parameter's mask is its shard's
            full = saved.masks[n]
            self.pruner.masks[n].copy_(shard_of(full, params[n]) if is_sharded(params[n])
                                       else full)
        self._load_state(RunDir.level_rel(level, CHECKPOINT), level)

    def _load_state(self, rel: str, level: int) -> None:
        """Loads a state file (unsharded tensors) into the model, checked against it."""
        state = self.files.load_state(rel, level, self.device)
        try:
            self.par.load_full_state(self.model, state)
        except RuntimeError as e:
            raise RunFileError(f"{self.files.shown(rel)} does not fit {self.cfg.model.name} "
                               f"({str(e).splitlines()[0]}): {self.files.redo(level)}") from None

    def _save_state(self, rel: str) -> None:
        """The whole model, unsharded, to `rel` (every rank calls it: a collective under
        FSDP2; rank 0 writes)."""
        full = self.par.full_state(self.model)
        if self.par.main:
            atomic.save_tensors(self.files.file(rel), full)

    def _take_rewind_point(self) -> None:
        self.pruner.snapshot()   # the whole network
        self._save_state(REWIND_POINT)

    def _at_iteration(self, it: int) -> None:
        """Before step `it` of level 0: the kept points and the late rewind point."""
        if it in rewind_probe.kept_points(self.cfg):
            self._save_state(RunDir.point_rel(it))
        if self.late and it == self.cfg.pruning.rewind_iteration:
            self._take_rewind_point()

    def _early_bird(self):
        """(monitor, the hook train_run calls after every evaluation of level 0): the monitor
        is fed the masks level 1 would draw now, once the rewind point is taken, and the hook
        says stop when it fires."""
        cfg, par = self.cfg, self.par
        reduce = par.sum_ints if par.mode == "fsdp" else None  # shards: whole-mask distances
        bird = EarlyBird(cfg.pruning.early_bird_window, cfg.pruning.early_bird, reduce=reduce)
        rule = cfg.pruning.rule.args(self.rates)

        def after_eval(it: int) -> bool:
            if self.late and it <= cfg.pruning.rewind_iteration:
                return False
            return bird.observe(self.pruner, **rule, step=it)
        return bird, after_eval

    # -- the levels --------------------------------------------------------------------------
    def _dense_level(self) -> dict:
        """Level 0: the dense network, with the rewind point (and the kept points) taken as
        it trains; with early_bird, stopped once the masks level 1 would draw settle."""
        cfg = self.cfg
        t_level = time.perf_counter()
        if not self.late:
            self._take_rewind_point()
        bird, after_eval = self._early_bird() if cfg.pruning.early_bird is not None else (
            None, None)
        result = self.train(self.model, self.pruner, 0, 0, "dense", self._at_iteration,
                            after_eval)
        metrics = level_metrics(self, 0, {"ticket": result}, {"prune": 0.0, "rewind": 0.0},
                                time.perf_counter() - t_level)
        if bird is not None:
            stopped = result.evals[-1][0]
            metrics["early_bird"] = {
                "eps": cfg.pruning.early_bird, "window": cfg.pruning.early_bird_window,
                "iteration": bird.fired_at, "stopped_at": stopped,
                "saved_iterations": cfg.training.iterations - stopped,
                "distances": [list(h) for h in bird.history]}
        kept = [k for k in rewind_probe.kept_points(cfg) if k < result.evals[-1][0]]  # reached
        if kept:
            metrics["points"] = kept
        return metrics

    def _pruned_level(self, level: int) -> dict:
        """Level L >= 1: the ticket branch (which prunes and rewinds the lineage), then every
        control, each a branch of lth_fast.imp.branches."""
        t_level = time.perf_counter()
        secs = {"prune": 0.0, "rewind": 0.0}
        results = {name: BRANCHES[name].train(self, level, secs)
                   for name in self.branches_at(level)}
        return level_metrics(self, level, results, secs, time.perf_counter() - t_level)

    def _save_level(self, level: int, metrics: dict) -> None:
        save_level(self, level, metrics, self.metrics)
        self.metrics.append(metrics)


def run_imp(cfg: IMPConfig, run_dir, *, progress: bool = True,
            log: Callable[[str], None] = print, overwrite: bool = False,
            fsdp: bool = False, tensorboard: Optional[str] = None,
            stop_below: Optional[float] = None) -> List[dict]:
    """Runs (or resumes) IMP with `cfg` in `run_dir`; returns every level's metrics.
    overwrite=True discards what the directory holds, once the experiment has started.
    Under torchrun it runs on every rank (lth_fast.imp.parallel): DDP, or FSDP2 with fsdp.
    tensorboard: a directory for each level's scalars (lth_fast.tracking), written by rank 0.
    stop_below: DELTA; IMP stops after the first pruned level whose ticket falls more than
    DELTA below dense (accuracy points; a language model: % of the dense loss)."""
    return IMPRun(cfg, run_dir, progress=progress, log=log, overwrite=overwrite,
                  fsdp=fsdp, tensorboard=tensorboard).run(stop_below)
