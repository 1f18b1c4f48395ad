"""The straight line between two trained networks: the weights at alpha, BatchNorm statistics
recomputed there (or kept as interpolated), and error and loss on a split.

W(alpha) = alpha * W1 + (1 - alpha) * W2 is torch.lerp(W2, W1, alpha), which is exact at both
ends (lerp computes from the nearer end), so alpha = 1 is child 1 and alpha = 0 child 2 bit for
bit, and a pruned entry, 0 in both children, is 0 at every alpha."""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SPLITS = ("test", "train")


def alphas(points: int) -> List[float]:
    """`points` evenly spaced values in [0, 1], both ends included exactly."""
    return [i / (points - 1) for i in range(points)]


def interpolate(w1: Dict[str, Tensor], w2: Dict[str, Tensor], alpha: float) -> Dict[str, Tensor]:
    """The state at alpha between two states of one model: floating tensors on the line;
    integer ones (BatchNorm's batch counter) from the nearer end."""
    out = {}
    for name, a in w1.items():
        b = w2[name]
        if a.is_floating_point():
            out[name] = torch.lerp(b, a, alpha)
        else:
            out[name] = (a if alpha >= 0.5 else b).clone()
    return out


def batchnorms(model: nn.Module) -> List[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, task, batches: int) -> None:
    """Running statistics from scratch over the first `batches` training batches of the run's
    own data order (a fixed set, the same at every alpha): each BatchNorm's cumulative average
    (momentum None) in train mode, then back to eval mode."""
    norms = batchnorms(model)
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for it in range(batches):
        x, _ = task.batch(it)
        model(x)
    for m, mom in zip(norms, saved):
        m.momentum = mom
    model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, task, split: str) -> Tuple[float, float]:
    """(error, loss) of the model in eval mode on `split` ("test" or "train"): error is 1 -
    accuracy (a language model's: of the next character), loss the mean cross-entropy in nats.
    A classifier reads its whole split; a language model's test split is read as the run
    evaluates it, and its train split on as many windows, evenly spaced over it."""
    model.eval()
    if task.kind == "classify":
        loss, acc = task._split(model, getattr(task.data, split))  # the run's own evaluation
        return 1.0 - acc, loss
    return _text(model, task, split)


def _text(model: nn.Module, task, split: str, batch: int = 256) -> Tuple[float, float]:
    # the test split as TextTask._split reads it (same windows, batches and sum order), so the
    # loss is the run's test loss bit for bit; the train split on a fixed, evenly spaced subset
    n = task.cfg.model.block_size + 1
    data = getattr(task.corpus, split)
    starts = task.eval_starts["test"]
    if split == "train":
        every = data.window_starts(n, n - 1)
        step = max(1, math.ceil(every.numel() / max(starts.numel(), 1)))
        starts = every[::step]
    total, correct, count = 0.0, 0, 0
    for i in range(0, starts.numel(), batch):
        w = data.windows(starts[i:i + batch], n).to(task.device)
        logits = model(w[:, :-1])
        flat, target = logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1)
        total += float(F.cross_entropy(flat, target, reduction="sum"))
        correct += int((flat.argmax(1) == target).sum())
        count += target.numel()
    count = max(count, 1)
    return 1.0 - correct / count, total / count


__all__ = ["SPLITS", "alphas", "batchnorms", "evaluate", "interpolate", "recompute_batchnorm"]
