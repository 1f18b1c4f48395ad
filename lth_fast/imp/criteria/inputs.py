"""What the pruning-at-initialisation criteria run the network on: a scratch copy of it (so the
model a branch trains is never touched: no gradient, no BatchNorm statistic), a fixed set of
training examples (snip, grasp) and SynFlow's all-ones input, for either kind of task
(lth_fast.imp.tasks: "classify" or "text")."""
from __future__ import annotations

import contextlib
import copy
from typing import Iterator, List, Tuple

import torch
from torch import Tensor, nn

CHUNK = 256   # examples per forward pass: bounds the memory of a large example set


def scratch(ctx, train: bool = True, dtype=None) -> Tuple[nn.Module, List[Tensor]]:
    """(a deep copy of the pruner's model, its pruned tensors in pruner.names order), in train
    mode (as a training step sees the network: BatchNorm on batch statistics) or eval mode, the
    pruned entries 0 (the copy's weights are the model's, which Pruner.prune zeroes)."""
    model = copy.deepcopy(ctx.pruner.model)
    if dtype is not None:
        model.to(dtype)
    model.train(train)
    params = [model.get_parameter(n) for n in ctx.pruner.names]
    with torch.no_grad():
        for p, n in zip(params, ctx.pruner.names):
            p.mul_(ctx.pruner.masks[n].to(p.device))
    return model, params


def examples(ctx) -> List[Tuple[Tensor, Tensor]]:
    """The scoring set as (inputs, targets) chunks on ctx.device. A classifier: ctx.examples
    training examples of every class (all of a class that has fewer), picked in a permutation
    drawn from ctx.seed, class by class as GraSP's code gathers them. A language model: the
    training batches of iterations 0 .. ctx.examples - 1 (what training sees first)."""
    task = ctx.task
    kind = getattr(task, "kind", None)
    if kind == "classify":
        train = task.data.train
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx.seed))
        labels = train.y[order]
        picked = torch.cat([order[labels == c][:ctx.examples]
                            for c in range(task.data.num_classes)])
        return [(train.x[i].to(ctx.device), train.y[i].to(ctx.device))
                for i in picked.split(CHUNK)]
    if kind == "text":
        task.start(ctx.device)   # a text task's start only records the device
        return [task.batch(it) for it in range(ctx.examples)]
    raise ValueError(f"pruning at initialisation reads a task's examples: a classifier's or a "
                     f"language model's, not {type(task).__name__}")


def mean_loss(ctx, model: nn.Module, batches) -> Iterator[Tensor]:
    """Each chunk's share of the mean loss over the whole set (chunk loss x its weight), so the
    gradients of the shares sum to the gradient of the mean."""
    total = sum(x.shape[0] for x, _ in batches)
    for x, y in batches:
        yield ctx.task.loss(model, x, y) * (x.shape[0] / total)


@contextlib.contextmanager
def all_ones(ctx, model: nn.Module, dtype) -> Iterator[Tensor]:
    """SynFlow's input, inside the context. A classifier: one all-ones example of the data's
    shape. A language model: its token input is a one-hot vector per position, which the token
    embedding turns into a row of the table; the all-ones vector gives the sum of all rows, so
    the embedding that reads the input returns its rows' sum at every position (the others,
    such as the position table, are left as they are)."""
    kind = getattr(ctx.task, "kind", None)
    if kind == "classify":
        yield torch.ones((1,) + tuple(ctx.task.data.input_shape), dtype=dtype,
                         device=ctx.device)
        return
    if kind != "text":
        raise ValueError(f"synflow needs an all-ones input for the task: a classifier's or a "
                         f"language model's, not {type(ctx.task).__name__}")
    idx = torch.zeros((1, ctx.task.cfg.model.block_size), dtype=torch.long, device=ctx.device)

    def ones_row_sum(module, args, out):
        if args and args[0] is idx:   # the embedding of the model's input, not of positions
            return module.weight.sum(0).expand(out.shape)
        return out

    hooks = [m.register_forward_hook(ones_row_sum) for m in model.modules()
             if isinstance(m, nn.Embedding)]
    try:
        yield idx
    finally:
        for h in hooks:
            h.remove()


__all__ = ["CHUNK", "all_ones", "examples", "mean_loss", "scratch"]
