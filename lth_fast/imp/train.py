"""One training run of IMP: a (possibly pruned) model trained from iteration `start` to
cfg.iterations, evaluated every cfg.eval_every iterations.

Everything random is a pure function of (seed, iteration): the data order of epoch e comes from
its own generator, and so does the augmentation of each batch. A run started at iteration k
(late rewinding) therefore sees exactly the batches and learning rates an uninterrupted run sees
from k on, and a restarted IMP run repeats the levels it lost bit for bit."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Dataset, Split, augment_cifar
from ..optim import MaskedAdam, MaskedSGD
from ..pruning import Pruner
from .config import IMPConfig


def lr_at(cfg: IMPConfig, iteration: int) -> float:
    """Linear warm-up over cfg.warmup iterations, then x gamma at every milestone passed."""
    scale = min(1.0, (iteration + 1) / cfg.warmup) if cfg.warmup else 1.0
    return cfg.lr * scale * cfg.gamma ** sum(iteration >= m for m in cfg.milestones)


def _generator(seed: int, stream: int, index: int, device="cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + stream) * 1_000_033 + index)
    return g


class DataOrder:
    """The minibatch indices of every iteration: epoch e is a fresh permutation (last partial
    batch dropped) drawn from a generator seeded by (seed, e)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the training set ({n})")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def indices(self, iteration: int) -> Tensor:
        epoch, pos = divmod(iteration, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = torch.randperm(self.n, generator=_generator(self.seed, 1, epoch))
        return self._perm[pos * self.batch_size:(pos + 1) * self.batch_size]


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, device, batch: int = 1000):
    """(mean cross-entropy, accuracy) over a split, in eval mode."""
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(split), batch):
        x = split.x[i:i + batch].to(device, non_blocking=True)
        y = split.y[i:i + batch].to(device, non_blocking=True)
        out = model(x)
        loss += float(F.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
    model.train(was_training)
    n = max(len(split), 1)
    return loss / n, correct / n


@dataclass
class RunResult:
    """What one training run measured. evals rows: [iteration, val_loss, val_acc, test_acc,
    train_loss (mean since the previous evaluation, None at the first)]."""
    evals: List[list] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=lambda: {"train": 0.0, "eval": 0.0})

    @property
    def early_stop(self) -> list:
        """The evaluation with the smallest validation loss (the earliest, on a tie)."""
        return min(self.evals, key=lambda e: (e[1], e[0]))

    def summary(self) -> dict:
        es, last = self.early_stop, self.evals[-1]
        return {"early_stop_iteration": es[0], "early_stop_val_loss": es[1],
                "test_accuracy_at_early_stop": es[3], "final_test_accuracy": last[3],
                "final_val_accuracy": last[2], "final_train_loss": last[4]}


def make_optimizer(model: nn.Module, cfg: IMPConfig, pruner: Pruner) -> torch.optim.Optimizer:
    """MaskedSGD or MaskedAdam: the pruned weights (and their momentum / Adam moments) are set
    to exactly 0 inside the fused step, so no masking pass follows it."""
    if cfg.optimizer == "sgd":
        return MaskedSGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                         weight_decay=cfg.weight_decay, nesterov=cfg.nesterov, masks=pruner)
    return MaskedAdam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                      masks=pruner)


def train_run(model: nn.Module, pruner: Pruner, data: Dataset, cfg: IMPConfig, *,
              start: int = 0, on_iteration: Optional[Callable[[int], None]] = None,
              progress=None, parallel=None) -> RunResult:
    """Trains `model` (its pruned weights already 0) from iteration `start` to cfg.iterations
    with a fresh optimizer. on_iteration(i) is called before step i (e.g. to snapshot at k);
    `progress` is a tqdm bar (or None) advanced once per iteration. parallel (an
    lth_fast.imp.parallel.Parallel): this rank trains on its part of every global batch."""
    device = next(model.parameters()).device
    opt = make_optimizer(model, cfg, pruner)
    order = DataOrder(len(data.train), cfg.batch_size, cfg.seed)
    train_x, train_y = data.train.x.to(device), data.train.y.to(device)
    result = RunResult()
    secs = result.seconds
    loss_sum, loss_n = torch.zeros((), device=device), 0
    model.train()
    for it in range(start, cfg.iterations + 1):
        if it == cfg.iterations or (it - start) % cfg.eval_every == 0:
            t0 = time.perf_counter()
            val_loss, val_acc = evaluate(model, data.val, device)
            _, test_acc = evaluate(model, data.test, device)
            train_loss = float(loss_sum) / loss_n if loss_n else None
            result.evals.append([it, val_loss, val_acc, test_acc, train_loss])
            loss_sum.zero_()
            loss_n = 0
            secs["eval"] += time.perf_counter() - t0
        if it == cfg.iterations:
            break
        if on_iteration is not None:
            on_iteration(it)
        t0 = time.perf_counter()
        idx = order.indices(it)
        idx = (idx if parallel is None else parallel.part(idx)).to(device)
        x, y = train_x[idx], train_y[idx]
        if cfg.augment:
            x = augment_cifar(x, _generator(cfg.seed, 2, it, device))
        for g in opt.param_groups:
            g["lr"] = lr_at(cfg, it)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach()
        loss_n += 1
        secs["train"] += time.perf_counter() - t0
        if progress is not None:
            progress.update(1)
    return result

