"""The children of an instability analysis: copies of one subnetwork at iteration k (W_k times a
level's masks) trained to the run's last iteration with the run's hyperparameters and schedule,
each with a data order of its own (lth_fast.imp.streams.child), so the two children of a pair
differ only in the order they see the data (and its augmentation, where the task has one).

Each child's final weights are kept (CHILD_FILE) with a record of what it was trained from and
its own metrics (CHILD_RECORD, written last: its presence marks the child done), so a killed
analysis trains only the children it had not finished. A child trains as a run's level does:
its weights are a pure function of (W_k, masks, data seed), so one trained again after a kill is
the same child bit for bit.

Under torchrun the children train one after another, each data-parallel over all the ranks as
a run's level does (Subnetwork.par: each rank takes its part of every global batch, through the
model `make` wraps); every rank evaluates, rank 0 alone writes, and the ranks meet after each
write, so all of them read the same files."""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import torch
from safetensors.torch import load_file

from ... import atomic
from ...pruning.mask_set import MaskSet
from .. import streams
from ..config import IMPConfig
from ..parallel import Parallel
from ..train import train_run
from .line import SPLITS, evaluate

CHILD_FILE, CHILD_RECORD = "child_{:03d}.safetensors", "child_{:03d}.json"


@dataclass
class Subnetwork:
    """What children train from: the run's config and task, the dense weights at iteration k
    (every state_dict tensor, on the CPU), the masks (None: dense), and `make(seed)` -> (model,
    pruner) of the run's architecture. `source` identifies the masks and W_k (their checksums):
    a kept child of another source is trained again."""
    cfg: IMPConfig
    task: object
    k: int
    weights: Dict[str, torch.Tensor]
    masks: Optional[MaskSet]
    make: Callable
    device: object
    source: dict
    par: Parallel = field(default_factory=Parallel)

    def write(self, fn: Callable[[], None]) -> None:
        """fn() on rank 0 alone (one process: here), then every rank meets the others."""
        if self.par.main:
            fn()
        self.par.barrier()


def child_config(cfg: IMPConfig, index: int) -> IMPConfig:
    """The run's config with the child's data seed; evaluated only where it starts and ends
    (evaluations do not change training)."""
    return cfg.replace(data_seed=streams.child(cfg.data_seed, index),
                       eval_every=cfg.training.iterations)


def build(sub: Subnetwork, weights: Dict[str, torch.Tensor]):
    """A model of the run's architecture holding `weights`, its pruner holding the masks."""
    model, pruner = sub.make(streams.init(sub.cfg.seed))
    try:  # each tensor once, a tied one under its first name (as the run saved it)
        Parallel().load_full_state(model, {n: v.to(sub.device) for n, v in weights.items()})
    except RuntimeError as e:
        raise ValueError(f"the weights at iteration {sub.k} do not fit {sub.cfg.model.name} "
                         f"({str(e).splitlines()[0]})") from None
    if sub.masks is not None:
        for n in pruner.names:
            pruner.masks[n].copy_(sub.masks.masks[n])
        pruner.apply()
    return model, pruner


def _task_for(task, cfg: IMPConfig):
    """The run's task drawing batches with another data seed (the data itself is shared)."""
    other = copy.copy(task)
    other.cfg = cfg
    return other


def own_metrics(model, task) -> dict:
    """A child's (or any state's) error and loss on each split, as the line evaluates them."""
    out = {}
    for split in SPLITS:
        err, loss = evaluate(model, task, split)
        out[split] = {"error": err, "loss": loss}
    return out


def child(sub: Subnetwork, folder: str, index: int, log=None) -> Dict[str, torch.Tensor]:
    """Child `index`'s final weights: the kept ones if their record matches `sub`, else
    trained now and kept."""
    path = os.path.join(folder, CHILD_FILE.format(index))
    record_path = os.path.join(folder, CHILD_RECORD.format(index))
    cfg = child_config(sub.cfg, index)
    want = {"k": sub.k, "index": index, "data_seed": cfg.data_seed, "source": sub.source}
    if os.path.exists(record_path) and os.path.exists(path):
        try:
            with open(record_path, encoding="utf-8") as f:
                record = json.load(f)
            weights = load_file(path)
            if {k: record.get(k) for k in want} == want and \
                    atomic.content_sha256(weights) == record.get("sha256"):
                return weights
        except (OSError, ValueError):
            pass  # damaged or foreign: trained again, below
        if log is not None:
            log(f"{record_path}: not a child of this subnetwork; training it again")
    t0 = time.perf_counter()
    model, pruner = build(sub, sub.weights)
    task = _task_for(sub.task, cfg)
    result = train_run(model, pruner, task, cfg, start=sub.k, parallel=sub.par)
    weights = {n: v.cpu().clone() for n, v in sub.par.full_state(model).items()}
    last = result.evals[-1]
    record = {
        **want, "sha256": atomic.content_sha256(weights), "metrics": own_metrics(model, task),
        # the run's own final evaluation of the child: [iteration, val loss, val accuracy (a
        # classifier), test accuracy or test loss]
        "final_eval": last[:4], "seconds": time.perf_counter() - t0}

    def keep():
        os.makedirs(folder, exist_ok=True)
        atomic.save_tensors(path, weights)
        atomic.write_json(record_path, record)
    sub.write(keep)
    if log is not None:
        log(f"  child {index} of k={sub.k}: trained {sub.cfg.training.iterations - sub.k} "
            f"iterations in {time.perf_counter() - t0:.1f} s")
    return weights


def read_record(folder: str, index: int) -> dict:
    with open(os.path.join(folder, CHILD_RECORD.format(index)), encoding="utf-8") as f:
        return json.load(f)


__all__ = ["CHILD_FILE", "CHILD_RECORD", "Subnetwork", "build", "child", "child_config",
           "own_metrics", "read_record"]
