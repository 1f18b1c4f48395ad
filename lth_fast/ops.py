"""Thin typed wrappers over torch.ops.lth_fast.*, with fake kernels for torch.compile."""
from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch

from . import _C  # noqa: F401  (loads the library: registers torch.ops.lth_fast)
from .amounts import Amount, parse_amount
from .checks import check_adam_hyperparameters, check_sgd_hyperparameters, check_tensors
from .stats import PruneStats

_INT64_MAX = 2**63 - 1


def prune_raw(weights: List[torch.Tensor], masks: List[torch.Tensor], fractions: List[float],
              counts: List[int], layerwise: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """The op itself: int64 [G, 2] (alive before, pruned) and float64 [G] thresholds."""
    return torch.ops.lth_fast.prune_.default(weights, masks, fractions, counts, layerwise)


@torch.library.register_fake("lth_fast::prune_")
def _prune_fake(weights, masks, fractions, counts, layerwise):
    groups = len(weights) if layerwise else 1
    device = weights[0].device if weights else torch.device("cpu")
    return (torch.empty((groups, 2), dtype=torch.long, device=device),
            torch.empty((groups,), dtype=torch.double, device=device))


def prune_(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
           amount: Union[Amount, Sequence[Amount]], *, scope: str = "global") -> PruneStats:
    """Prunes the `amount` alive entries (mask True) of smallest |weight|, in place on `masks`.

    amount: a float in [0, 1] (a fraction of the alive entries, k = round(amount * alive)) or an
    int (k). scope="global" ranks all tensors together; scope="layer" ranks each alone, with one
    amount or a list of one per tensor. Ties go to the earlier (list index, element index).
    Weights are not touched. Raises ValueError/TypeError naming the bad list and index, with
    every mask unchanged.
    """
    weights, masks = list(weights), list(masks)
    fractions, counts, layerwise = parse_amount(amount, scope, len(weights))
    check_tensors("prune_", "weights", weights)
    check_tensors("prune_", "masks", masks)
    if any(c > _INT64_MAX for c in counts):
        _raise_count_too_large(weights, masks, counts, layerwise)
    if _all_empty("prune_", weights=weights, masks=masks):
        if counts and counts[0] > 0 and not layerwise:  # one ranking, of nothing
            raise ValueError(f"prune_: amount[0] = {counts[0]} exceeds the 0 alive entries")
        return PruneStats(0, 0, None)
    stats, thresholds = prune_raw(weights, masks, fractions, counts, layerwise)
    return PruneStats.from_tensors(stats, thresholds, layerwise)


def _all_empty(op: str, **lists) -> bool:
    """True when every list is empty (the dispatcher needs a tensor to choose a device); a
    ValueError when the first is empty and another is not."""
    (first, head), *rest = lists.items()
    if head:
        return False
    for name, items in rest:
        if items:
            raise ValueError(f"{op}: {name} has {len(items)} tensors but {first} has 0")
    return True


def _raise_count_too_large(weights, masks, counts, layerwise) -> None:
    """A count beyond int64 cannot reach the op; raise what it would have raised (a NaN
    anywhere first, then the count against its alive entries), masks untouched."""
    for i, w in enumerate(weights):
        if w.is_floating_point() and bool(torch.isnan(w).any()):
            raise ValueError(f"prune_: weights[{i}] contains NaN")
    for g, c in enumerate(counts * (len(masks) if layerwise and len(counts) == 1 else 1)):
        group = [masks[g]] if layerwise else masks
        alive = sum(int(m.count_nonzero()) for m in group)
        if c > alive:
            j = g if len(counts) > 1 else 0
            where = f" of weights[{g}]" if layerwise else ""
            raise ValueError(f"prune_: amount[{j}] = {c} exceeds the {alive} alive entries{where}")


def cpu_isa() -> str:
    """The CPU instruction set the kernels use now: 'scalar', 'avx2' or 'avx512'
    (LTH_FAST_CPU_ISA forces one)."""
    return torch.ops.lth_fast.cpu_isa.default()


def masked_sgd_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                masks: Sequence[torch.Tensor], momentum_buffers: Sequence[torch.Tensor], *,
                lr: float, momentum: float = 0.0, dampening: float = 0.0,
                weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False,
                init_buffers: bool = False) -> None:
    """One torch.optim.SGD step on the alive entries, fused in one pass; pruned entries of the
    params and of their momentum buffers end exactly 0. momentum_buffers: one per param when
    momentum != 0 (with init_buffers=True on the first step: buffer = gradient), else empty."""
    params, grads, masks, momentum_buffers = (list(params), list(grads), list(masks),
                                              list(momentum_buffers))
    if _all_empty("masked_sgd_", params=params, grads=grads, masks=masks,
                  momentum_buffers=momentum_buffers):
        check_sgd_hyperparameters("masked_sgd_", lr, momentum, dampening, weight_decay, nesterov)
        return
    torch.ops.lth_fast.masked_sgd_.default(
        list(params), list(grads), list(masks), list(momentum_buffers), float(lr),
        float(momentum), float(dampening), float(weight_decay), bool(nesterov), bool(maximize),
        bool(init_buffers))


@torch.library.register_fake("lth_fast::masked_sgd_")
def _masked_sgd_fake(params, grads, masks, momentum_buffers, lr, momentum, dampening,
                     weight_decay, nesterov, maximize, init_buffers):
    return None


def masked_adam_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                 masks: Sequence[torch.Tensor], exp_avgs: Sequence[torch.Tensor],
                 exp_avg_sqs: Sequence[torch.Tensor], *, lr: float, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                 step: float, maximize: bool = False) -> None:
    """One torch.optim.Adam step (amsgrad off, L2 weight decay) on the alive entries, fused in
    one pass; pruned entries of the params and of both moments end exactly 0. step: the step
    count after this step's increment (>= 1), shared by every tensor of the call."""
    params, grads, masks, exp_avgs, exp_avg_sqs = (list(params), list(grads), list(masks),
                                                   list(exp_avgs), list(exp_avg_sqs))
    if _all_empty("masked_adam_", params=params, grads=grads, masks=masks, exp_avgs=exp_avgs,
                  exp_avg_sqs=exp_avg_sqs):
        check_adam_hyperparameters("masked_adam_", lr, beta1, beta2, eps, weight_decay, step)
        return
    torch.ops.lth_fast.masked_adam_.default(
        params, grads, masks, exp_avgs, exp_avg_sqs, float(lr), float(beta1), float(beta2),
        float(eps), float(weight_decay), float(step), bool(maximize))


@torch.library.register_fake("lth_fast::masked_adam_")
def _masked_adam_fake(params, grads, masks, exp_avgs, exp_avg_sqs, lr, beta1, beta2, eps,
                      weight_decay, step, maximize):
    return None


def rewind_(params: Sequence[torch.Tensor], snapshot: Sequence[torch.Tensor],
            masks: Sequence[torch.Tensor]) -> None:
    """params = snapshot where masks else 0, fused in one pass."""
    params, snapshot, masks = list(params), list(snapshot), list(masks)
    if _all_empty("rewind_", params=params, snapshot=snapshot, masks=masks):
        return
    torch.ops.lth_fast.rewind_.default(list(params), list(snapshot), list(masks))


@torch.library.register_fake("lth_fast::rewind_")
def _rewind_fake(params, snapshot, masks):
    return None
