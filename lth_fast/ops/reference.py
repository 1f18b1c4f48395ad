"""The executable spec of the ops (docs/semantics.md): pure-PyTorch twins of the fused kernels,
with the same names, signatures, checks and results. Every fast path is tested against it; it
is the honest pure-PyTorch way the fast paths are measured against (concatenate, kthvalue,
resolve ties by position); and it is the dispatcher's kernel on every device that lth_fast._C
has no kernel for (lth_fast.ops.library). It imports without lth_fast._C."""
from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch

from .amounts import Amount, is_nm, k_for, parse_amount
from .checks import (check_mask_distance, check_masked_adam, check_masked_sgd, check_prune,
                     check_prune_nm, check_rewind, nm_geometry)
from .distance import MaskDistance, Masks, Numels, read_inputs
from .stats import PruneStats

Tensors = Sequence[torch.Tensor]


# -- prune_ ------------------------------------------------------------------------------------
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


def select_(weights: Tensors, masks: Tensors, fractions: Sequence[float],
            counts: Sequence[int], layerwise: bool) -> List[PruneStats]:
    """prune_ as the op takes its amounts (exactly one of fractions / counts, see
    lth_fast.ops.amounts): one PruneStats per ranking (1 global, one per tensor layerwise)."""
    weights, masks = list(weights), list(masks)
    check_prune(weights, masks, fractions, counts, layerwise)
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
    return rows


def prune_(weights: Tensors, masks: Tensors,
           amount: Union[Amount, Sequence[Amount], None] = None, *, scope: str = "global",
           n: int = 2, m: int = 4) -> PruneStats:
    """Reference of lth_fast.prune_ (see there)."""
    if is_nm(amount, scope, n, m):
        return PruneStats.from_rows(nm_select_(weights, masks, int(n), int(m)), True)
    fractions, counts, layerwise = parse_amount(amount, scope, len(weights))
    return PruneStats.from_rows(select_(weights, masks, fractions, counts, layerwise), layerwise)


# -- N:M selection (prune_ with scope="nm") ----------------------------------------------------
def _nm_keep(w: torch.Tensor, alive: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """The new mask of one tensor: in each group of m entries along the input dimension, the
    alive entries that fewer than n alive entries of the group beat (larger |w|, or equal |w|
    at an earlier position)."""
    outer, channels, inner = nm_geometry(w.shape)
    shape = (outer, channels // m, m, inner)  # dim 2 runs through a group
    mags = w.detach().abs().double().reshape(shape)  # exact for every float dtype
    live = alive.reshape(shape)
    # A stable sort by descending |w|, with dead entries last (-1 is below every |w|), puts
    # before each alive entry exactly the alive entries that beat it: its place is their count.
    order = torch.where(live, mags, -1.0).sort(dim=2, descending=True, stable=True).indices
    places = torch.arange(m).view(1, 1, m, 1).expand(shape).contiguous()
    place = torch.empty_like(order).scatter_(2, order, places)
    return (live & (place < n)).reshape(w.shape)


def nm_select_(weights: Tensors, masks: Tensors, n: int, m: int) -> List[PruneStats]:
    """prune_nm_ with the op's own arguments: one PruneStats per tensor (threshold None)."""
    weights, masks = list(weights), list(masks)
    check_prune_nm(weights, masks, n, m)
    for i, w in enumerate(weights):
        if torch.isnan(w).any():
            raise ValueError(f"prune_: weights[{i}] contains NaN")
    rows = []
    for w, mask in zip(weights, masks):
        keep = _nm_keep(w, mask, n, m)
        alive = int(mask.sum())
        rows.append(PruneStats(alive, alive - int(keep.sum()), None))
        mask.copy_(keep)
    return rows


# -- masked_sgd_ -------------------------------------------------------------------------------
def _upcast(dtype: torch.dtype):
    """Half types compute in float32 and round once when stored."""
    if dtype in (torch.float16, torch.bfloat16):
        return lambda t: t.float()
    return lambda t: t


def _store(dst: torch.Tensor, src: torch.Tensor, mask: torch.Tensor) -> None:
    dst.copy_(torch.where(mask, src, torch.zeros((), dtype=src.dtype)))


@torch.no_grad()
def masked_sgd_(params: Tensors, grads: Tensors, masks: Tensors, momentum_buffers: Tensors, *,
                lr: float, momentum: float = 0.0, dampening: float = 0.0,
                weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False,
                init_buffers: bool = False) -> None:
    """Reference of lth_fast.masked_sgd_: torch.optim.SGD's foreach step, then masking of the
    params and buffers."""
    params, grads, masks, bufs = list(params), list(grads), list(masks), list(momentum_buffers)
    check_masked_sgd(params, grads, masks, bufs, lr, momentum, dampening, weight_decay, nesterov)
    if not params:
        return
    up = _upcast(params[0].dtype)
    p32, g32, b32 = [up(t) for t in params], [up(t) for t in grads], [up(t) for t in bufs]
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
    for i, (p, m) in enumerate(zip(params, masks)):
        _store(p, new_p[i], m)
        if momentum != 0:
            _store(bufs[i], b32[i], m)


# -- masked_adam_ ------------------------------------------------------------------------------
@torch.no_grad()
def adam_step_(params: Tensors, grads: Tensors, masks: Tensors, exp_avgs: Tensors,
               exp_avg_sqs: Tensors, max_exp_avg_sqs: Tensors, lr: float, beta1: float,
               beta2: float, eps: float, weight_decay: float, step: float, amsgrad: bool,
               maximize: bool, decoupled_weight_decay: bool) -> None:
    """masked_adam_ with the op's own arguments (max_exp_avg_sqs empty unless amsgrad):
    torch.optim.Adam's single-tensor step (the same ops in the same order: L2 weight decay
    added to the gradient, or AdamW's decoupled decay of the weight), then masking of the
    params and every moment."""
    params, grads, masks = list(params), list(grads), list(masks)
    exp_avgs, exp_avg_sqs, maxes = list(exp_avgs), list(exp_avg_sqs), list(max_exp_avg_sqs)
    check_masked_adam(params, grads, masks, exp_avgs, exp_avg_sqs, maxes, lr, beta1, beta2, eps,
                      weight_decay, step, amsgrad)
    step_size = lr / (1 - beta1 ** step)  # host side in double, as torch
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    for i, (p, g, m, a, v) in enumerate(zip(params, grads, masks, exp_avgs, exp_avg_sqs)):
        up = _upcast(p.dtype)
        w = up(p)
        d = -up(g) if maximize else up(g)
        if weight_decay != 0:
            if decoupled_weight_decay:
                w = w.mul(1 - lr * weight_decay)
            else:
                d = d.add(w, alpha=weight_decay)
        new_a = up(a).lerp(d, 1 - beta1)
        new_v = up(v).mul(beta2).addcmul_(d, d, value=1 - beta2)
        second = torch.maximum(up(maxes[i]), new_v) if amsgrad else new_v
        denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
        _store(p, w.addcdiv(new_a, denom, value=-step_size), m)
        _store(a, new_a, m)
        _store(v, new_v, m)
        if amsgrad:
            _store(maxes[i], second, m)


def masked_adam_(params: Tensors, grads: Tensors, masks: Tensors, exp_avgs: Tensors,
                 exp_avg_sqs: Tensors, *, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, step: float,
                 maximize: bool = False, max_exp_avg_sqs: Optional[Tensors] = None,
                 decoupled_weight_decay: bool = False) -> None:
    """Reference of lth_fast.masked_adam_ (see there)."""
    adam_step_(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs or [], lr, beta1,
               beta2, eps, weight_decay, step, max_exp_avg_sqs is not None, maximize,
               decoupled_weight_decay)


# -- rewind_ -----------------------------------------------------------------------------------
@torch.no_grad()
def rewind_(params: Tensors, snapshot: Tensors, masks: Tensors) -> None:
    """Reference of lth_fast.rewind_: params = snapshot where mask else 0, per tensor."""
    params, snapshot, masks = list(params), list(snapshot), list(masks)
    check_rewind(params, snapshot, masks)
    for p, s, m in zip(params, snapshot, masks):
        _store(p, s, m)


# -- mask_distance -----------------------------------------------------------------------------
def _unpacked(packed: torch.Tensor, n: int) -> torch.Tensor:
    """The first n entries of a pack_bits mask (most significant bit first), as 0/1 bytes."""
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    return ((packed.unsqueeze(1) >> shifts) & 1).reshape(-1)[:n]


def mask_distance_counts(masks_a: Tensors, masks_b: Tensors, numels: Sequence[int]) -> List[int]:
    """mask_distance with the op's own arguments: per pair, how many entries differ. Packed
    masks are unpacked to their numels[i] entries, so padding bits are never compared."""
    masks_a, masks_b, numels = list(masks_a), list(masks_b), list(numels)
    check_mask_distance(masks_a, masks_b, numels)
    out = []
    for i, (a, b) in enumerate(zip(masks_a, masks_b)):
        if a.dtype == torch.uint8:
            a, b = _unpacked(a, numels[i]), _unpacked(b, numels[i])
        out.append(int((a.reshape(-1) != b.reshape(-1)).sum()))
    return out


def mask_distance(masks_a: Masks, masks_b: Masks, *, numels: Numels = None) -> MaskDistance:
    """Reference of lth_fast.mask_distance (see there)."""
    names, a, b, counts, totals = read_inputs(masks_a, masks_b, numels)
    return MaskDistance.from_counts(mask_distance_counts(a, b, counts), totals, names)
