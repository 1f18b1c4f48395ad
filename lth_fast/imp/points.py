"""The weights of level 0 at an iteration, retrained from the initialisation: every minibatch
is a pure function of (data seed, iteration) (lth_fast.imp.streams) and the initialisation of
the seed, so retraining to iteration k gives the bytes a run kept at k (run.keep_points,
RUN_DIR/points/) or took as its rewind point. What a kept point saves is disk, not
reproducibility."""
from __future__ import annotations

from typing import Dict, Optional

import torch

from . import streams
from .config import IMPConfig
from .build import new_model, new_pruner
from .parallel import Parallel
from .tasks import load_task
from .train import train_run


def weights_at(cfg: IMPConfig, iteration: int, device: Optional[str] = None,
               task=None) -> Dict[str, torch.Tensor]:
    """The whole dense model (state_dict names, each tensor once, on the CPU) after
    `iteration` steps of level 0 of the experiment `cfg`, in one process. `task`: the loaded
    task, if the caller has it (lth_fast.imp.tasks.load_task)."""
    if not 0 <= iteration <= cfg.training.iterations:
        raise ValueError(f"iteration must be in [0, {cfg.training.iterations}] (training."
                         f"iterations), got {iteration}")
    task = load_task(cfg) if task is None else task
    model = new_model(cfg, task, streams.init(cfg.seed), device)
    train_run(model, new_pruner(model, cfg), task, cfg, until=iteration)
    return {k: v.cpu() for k, v in Parallel().full_state(model).items()}


__all__ = ["weights_at"]
