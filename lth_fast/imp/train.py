"""One training run of IMP: a (possibly pruned) model trained from iteration `start` to
cfg.iterations, evaluated every cfg.eval_every iterations.

What it trains on is a task (lth_fast.imp.tasks), whose every minibatch is a pure function of
(seed, iteration). A run started at iteration k (late rewinding) therefore sees exactly the
batches and learning rates an uninterrupted run sees from k on, and a restarted IMP run repeats
the levels it lost bit for bit."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from ..ops.api import rewind_
from ..optim import MaskedAdam, MaskedAdamW, MaskedSGD
from ..pruning import Pruner
from .config import IMPConfig, TrainingConfig


def lr_at(cfg: IMPConfig, iteration: int) -> float:
    """The learning rate of `iteration` (lr_of on the config's training group)."""
    return lr_of(cfg.training, iteration)


def lr_of(cfg: TrainingConfig, iteration: int) -> float:
    """Linear warm-up over cfg.warmup iterations, then x gamma at every milestone passed
    (schedule "step"), or a cosine decay from lr to min_lr over the remaining iterations
    (schedule "cosine")."""
    if cfg.schedule == "cosine":
        if cfg.warmup and iteration < cfg.warmup:
            return cfg.lr * (iteration + 1) / cfg.warmup
        span = max(cfg.iterations - cfg.warmup, 1)
        progress = (iteration - cfg.warmup) / span
        return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))
    scale = min(1.0, (iteration + 1) / cfg.warmup) if cfg.warmup else 1.0
    return cfg.lr * scale * cfg.gamma ** sum(iteration >= m for m in cfg.milestones)


@dataclass
class RunResult:
    """What one training run measured. evals rows: [iteration, val_loss, val_acc, test value,
    train_loss (mean since the previous evaluation, None at the first)]; for a language model
    val_acc is None and the test value is the test loss, else it is the test accuracy."""
    kind: str = "classify"
    evals: List[list] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=lambda: {"train": 0.0, "eval": 0.0})

    @property
    def early_stop(self) -> list:
        """The evaluation with the smallest validation loss (the earliest, on a tie)."""
        return min(self.evals, key=lambda e: (e[1], e[0]))

    def summary(self) -> dict:
        es, last = self.early_stop, self.evals[-1]
        if self.kind == "text":
            return {"early_stop_iteration": es[0], "early_stop_val_loss": es[1],
                    "test_loss_at_early_stop": es[3], "final_val_loss": last[1],
                    "final_test_loss": last[3], "final_train_loss": last[4]}
        return {"early_stop_iteration": es[0], "early_stop_val_loss": es[1],
                "test_accuracy_at_early_stop": es[3], "final_test_accuracy": last[3],
                "final_val_accuracy": last[2], "final_train_loss": last[4]}


def make_optimizer(model: nn.Module, cfg: TrainingConfig,
                   pruner: Pruner) -> torch.optim.Optimizer:
    """MaskedSGD, MaskedAdam or MaskedAdamW: the pruned weights (and their momentum / Adam
    moments) are set to exactly 0 inside the fused step, so no masking pass follows it. AdamW
    decays the matrices only (weights of 2 or more dimensions), not biases, norms' scales or
    position tables of one dimension, as nanoGPT does."""
    if cfg.optimizer == "sgd":
        return MaskedSGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov, masks=pruner)
    betas = (0.9, cfg.beta2)
    if cfg.optimizer == "adamw":
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2]},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return MaskedAdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=betas,
                           weight_decay=cfg.weight_decay, masks=pruner)
    return MaskedAdam(model.parameters(), lr=cfg.lr, betas=betas,
                      weight_decay=cfg.weight_decay, masks=pruner)


def train_run(model: nn.Module, pruner: Pruner, task, cfg: IMPConfig, *,
              start: int = 0, on_iteration: Optional[Callable[[int], None]] = None,
              stop_after_eval: Optional[Callable[[int], bool]] = None,
              progress=None, parallel=None, until: Optional[int] = None) -> RunResult:
    """Trains `model` (its pruned weights already 0) on `task` (lth_fast.imp.tasks) from
    iteration `start` to cfg.iterations with a fresh optimizer. on_iteration(i) is called
    before step i (e.g. to snapshot at k); stop_after_eval(i), called after each evaluation
    before the last, ends the run there when it returns True (an early-bird ticket);
    `progress` is a tqdm bar (or None) advanced once per iteration. parallel (an
    lth_fast.imp.parallel.Parallel): this rank trains on its part of every global batch.
    until: stop before step `until` (after its evaluation, if one falls there), leaving the
    weights of iteration `until` (lth_fast.imp.points)."""
    device = next(model.parameters()).device
    tc = cfg.training
    opt = make_optimizer(model, tc, pruner)
    # [(parameter, mask)]: with clipping, pruned gradient entries are zeroed before the norm
    masked = list(pruner.param_masks().items()) if tc.grad_clip is not None else []
    task.start(device)
    result = RunResult(kind=task.kind)
    secs = result.seconds
    loss_sum, loss_n = torch.zeros((), device=device), 0
    model.train()
    for it in range(start, tc.iterations + 1):
        if it == tc.iterations or (it - start) % tc.eval_every == 0:
            t0 = time.perf_counter()
            model.eval()
            val_loss, val_acc, test_value = task.evaluate(model)
            model.train()
            train_loss = float(loss_sum) / loss_n if loss_n else None
            result.evals.append([it, val_loss, val_acc, test_value, train_loss])
            loss_sum.zero_()
            loss_n = 0
            secs["eval"] += time.perf_counter() - t0
            if it < tc.iterations and stop_after_eval is not None and stop_after_eval(it):
                break
        if it == tc.iterations or it == until:
            break
        if on_iteration is not None:
            on_iteration(it)
        t0 = time.perf_counter()
        x, y = task.batch(it, parallel)
        for g in opt.param_groups:
            g["lr"] = lr_of(tc, it)
        loss = task.loss(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip is not None:
            held = [(p.grad, m) for p, m in masked if p.grad is not None]
            if held:
                grads = [g for g, _ in held]
                rewind_(grads, grads, [m for _, m in held])
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        loss_sum += loss.detach()
        loss_n += 1
        secs["train"] += time.perf_counter() - t0
        if progress is not None:
            progress.update(1)
    return result
