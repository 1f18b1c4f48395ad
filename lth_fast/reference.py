"""Pure-PyTorch twins of the fast ops: same names, same signatures, same results. This is the
executable spec every fast path is tested against, and the honest pure-PyTorch way it is
measured against (concatenate, kthvalue, resolve ties by position)."""
from __future__ import annotations

import math
from typing import List, Sequence, Union

import torch

from .amounts import Amount, k_for, parse_amount
from .checks import (check_adam_hyperparameters, check_float_list, check_like,
                     check_sgd_hyperparameters)
from .stats import PruneStats


def _select(weights: List[torch.Tensor], masks: List[torch.Tensor], k: int):
    """New flat alive mask after pruning the k smallest alive |w| (ties: earlier position)."""
    mags = torch.cat([w.detach().reshape(-1).abs() for w in weights])
    alive = torch.cat([m.reshape(-1) for m in masks])
    if k == 0:
        return alive, None
    t = mags[alive].kthvalue(k).values  # the k-th smallest alive magnitude
    below = alive & (mags < t)
    ties = alive & (mags == t)
    need = k - int(below.sum())
    prune = below | (ties & (ties.cumsum(0) <= need))
    return alive & ~prune, float(t)


def prune_(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
           amount: Union[Amount, Sequence[Amount]], *, scope: str = "global") -> PruneStats:
    """Reference of lth_fast.prune_ (see there)."""
    weights, masks = list(weights), list(masks)
    fractions, counts, layerwise = parse_amount(amount, scope, len(weights))
    check_float_list("prune_", "weights", weights)
    check_like("prune_", "masks", masks, "weights", weights, torch.bool)
    for i, w in enumerate(weights):
        if torch.isnan(w).any():
            raise ValueError(f"prune_: weights[{i}] contains NaN")
    groups = [[i] for i in range(len(weights))] if layerwise else [list(range(len(weights)))]
    plans = []
    for g, idx in enumerate(groups):  # check every ranking before writing any mask
        alive = sum(int(masks[i].sum()) for i in idx)
        k = k_for(fractions, counts, g, alive)
        if k > alive:
            where = f" of weights[{g}]" if layerwise else ""
            j = g if counts and len(counts) > 1 else 0
            raise ValueError(f"prune_: amount[{j}] = {k} exceeds the {alive} alive entries{where}")
        plans.append((idx, alive, k))
    rows = []
    for idx, alive, k in plans:
        if not idx:
            rows.append(PruneStats(alive, k, None))
            continue
        new, threshold = _select([weights[i] for i in idx], [masks[i] for i in idx], k)
        for i, part in zip(idx, new.split([masks[i].numel() for i in idx])):
            masks[i].copy_(part.view_as(masks[i]))
        rows.append(PruneStats(alive, k, threshold))
    if not layerwise:
        return rows[0]
    return PruneStats(sum(r.alive_before for r in rows), sum(r.pruned for r in rows), None,
                      tuple(rows))


def _check_sgd(params, grads, masks, momentum_buffers, lr, momentum, dampening, weight_decay,
               nesterov):
    op = "masked_sgd_"
    check_float_list(op, "params", params)
    check_like(op, "grads", grads, "params", params, None)
    check_like(op, "masks", masks, "params", params, torch.bool)
    check_sgd_hyperparameters(op, lr, momentum, dampening, weight_decay, nesterov)
    if momentum != 0:
        check_like(op, "momentum_buffers", momentum_buffers, "params", params, None)
    elif momentum_buffers:
        raise ValueError(f"{op}: momentum_buffers must be empty when momentum is 0")


@torch.no_grad()
def masked_sgd_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                masks: Sequence[torch.Tensor], momentum_buffers: Sequence[torch.Tensor], *,
                lr: float, momentum: float = 0.0, dampening: float = 0.0,
                weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False,
                init_buffers: bool = False) -> None:
    """Reference of lth_fast.masked_sgd_: torch.optim.SGD's foreach step, then masking of the
    params and buffers. Half types are computed in float32 and rounded once."""
    params, grads, masks, bufs = list(params), list(grads), list(masks), list(momentum_buffers)
    _check_sgd(params, grads, masks, bufs, lr, momentum, dampening, weight_decay, nesterov)
    if not params:
        return
    half = params[0].dtype in (torch.float16, torch.bfloat16)
    up = (lambda ts: [t.float() for t in ts]) if half else (lambda ts: ts)
    p32, g32, b32 = up(params), up(grads), up(bufs)
    d = torch._foreach_neg(g32) if maximize else list(g32)
    if weight_decay != 0:
        d = torch._foreach_add(d, p32, alpha=weight_decay)
    if momentum != 0:
        if init_buffers:
            b32 = [x.clone() for x in d]
        else:
            b32 = torch._foreach_mul(b32, momentum)
            torch._foreach_add_(b32, d, alpha=1 - dampening)
        d = torch._foreach_add(d, b32, alpha=momentum) if nesterov else b32
    new_p = torch._foreach_add(p32, d, alpha=-lr)
    for p, b, np_, nb, m in zip(params, bufs or [None] * len(params), new_p,
                                b32 or [None] * len(params), masks):
        p.copy_(torch.where(m, np_, torch.zeros((), dtype=np_.dtype)))
        if b is not None:
            b.copy_(torch.where(m, nb, torch.zeros((), dtype=nb.dtype)))


@torch.no_grad()
def masked_adam_(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                 masks: Sequence[torch.Tensor], exp_avgs: Sequence[torch.Tensor],
                 exp_avg_sqs: Sequence[torch.Tensor], *, lr: float, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                 step: float, maximize: bool = False) -> None:
    """Reference of lth_fast.masked_adam_: torch.optim.Adam's single-tensor step (the same ops
    in the same order, amsgrad off, L2 weight decay), then masking of the params and both
    moments. Half types are computed in float32 and rounded once."""
    op = "masked_adam_"
    params, grads, masks = list(params), list(grads), list(masks)
    exp_avgs, exp_avg_sqs = list(exp_avgs), list(exp_avg_sqs)
    check_float_list(op, "params", params)
    check_like(op, "grads", grads, "params", params, None)
    check_like(op, "masks", masks, "params", params, torch.bool)
    check_like(op, "exp_avgs", exp_avgs, "params", params, None)
    check_like(op, "exp_avg_sqs", exp_avg_sqs, "params", params, None)
    check_adam_hyperparameters(op, lr, beta1, beta2, eps, weight_decay, step)
    step_size = lr / (1 - beta1 ** step)  # host side in double, as torch
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    for p, g, m, a, v in zip(params, grads, masks, exp_avgs, exp_avg_sqs):
        up = (lambda t: t.float()) if p.dtype in (torch.float16, torch.bfloat16) else (lambda t: t)
        w = up(p)
        d = -up(g) if maximize else up(g)
        if weight_decay != 0:
            d = d.add(w, alpha=weight_decay)
        new_a = up(a).lerp(d, 1 - beta1)
        new_v = up(v).mul(beta2).addcmul_(d, d, value=1 - beta2)
        denom = (new_v.sqrt() / bias_correction2_sqrt).add_(eps)
        new_p = w.addcdiv(new_a, denom, value=-step_size)
        zero = torch.zeros((), dtype=new_p.dtype)
        for dst, src in ((p, new_p), (a, new_a), (v, new_v)):
            dst.copy_(torch.where(m, src, zero))


@torch.no_grad()
def rewind_(params: Sequence[torch.Tensor], snapshot: Sequence[torch.Tensor],
            masks: Sequence[torch.Tensor]) -> None:
    """Reference of lth_fast.rewind_: params = snapshot * mask, per tensor."""
    params, snapshot, masks = list(params), list(snapshot), list(masks)
    check_float_list("rewind_", "params", params)
    check_like("rewind_", "snapshot", snapshot, "params", params, None)
    check_like("rewind_", "masks", masks, "params", params, torch.bool)
    for p, s, m in zip(params, snapshot, masks):
        p.copy_(torch.where(m, s, torch.zeros((), dtype=s.dtype)))
