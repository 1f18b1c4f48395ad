"""The front door of every op: typed Python functions over torch.ops.lth_fast.*. The dispatcher
picks the kernel: the fused one where lth_fast._C has one for the tensors' device, else the
pure-PyTorch reference (registered as the default kernel in lth_fast.ops.library), so each op
behaves the same for every caller on every device. Semantics: docs/semantics.md."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch

from . import library, reference  # noqa: F401  (library: the ops complete before any call)
from .amounts import Amount, parse_amount
from .checks import as_list, check_tensors
from .distance import MaskDistance, Masks, Numels, read_inputs
from .dtensors import local_list, refuse_sharded
from .nm import NM, read_scope
from .stats import PruneStats

Tensors = Sequence[torch.Tensor]
_INT64_MAX = 2**63 - 1
# The op overloads, looked up once: resolving torch.ops.lth_fast.<op>.default costs more per
# call than a small model's whole selection pass.
_PRUNE = torch.ops.lth_fast.prune_.default
_MASKED_SGD = torch.ops.lth_fast.masked_sgd_.default
_MASKED_ADAM = torch.ops.lth_fast.masked_adam_.default
_REWIND = torch.ops.lth_fast.rewind_.default
_PRUNE_NM = torch.ops.lth_fast.prune_nm_.default
_MASK_DISTANCE = torch.ops.lth_fast.mask_distance.default


def prune_raw(weights: List[torch.Tensor], masks: List[torch.Tensor], fractions: List[float],
              counts: List[int], layerwise: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """The op itself: int64 [G, 2] (alive before, pruned) and float64 [G] thresholds."""
    return _PRUNE(weights, masks, fractions, counts, layerwise)


def prune_(weights: Tensors, masks: Tensors,
           amount: Union[Amount, Sequence[Amount], None] = None, *,
           scope: Union[str, NM] = "global", **deprecated) -> PruneStats:
    """Prunes the `amount` alive entries (mask True) of smallest |weight|, in place on `masks`.

    amount: a float in [0, 1] (a fraction of the alive entries, k = round(amount * alive)) or an
    int (k). scope="global" ranks all tensors together; scope="layer" ranks each alone, with one
    amount or a list of one per tensor. Ties go to the earlier (list index, element index).

    scope=NM(n, m) (lth_fast.NM) takes no amount: in every group of m consecutive weights along
    the input dimension (dim 1 of [O, C, *K]: a Linear row, a conv's input channels; the only
    dim of a 1-D tensor) it keeps the n alive entries of largest |weight|, ties to the earlier
    position (docs/semantics.md, "N:M selection"). The result has one row per tensor in
    .layers, as for scope="layer". The old spelling scope="nm", n=2, m=4 (the only keywords
    `deprecated` takes) still works for one release, with a DeprecationWarning.

    Weights are not touched. Raises ValueError/TypeError naming the bad list and index, with
    every mask unchanged.
    """
    weights, masks = as_list("prune_", "weights", weights), as_list("prune_", "masks", masks)
    rule = read_scope("prune_", amount, scope, deprecated)
    if rule is not None:
        return prune_nm(weights, masks, rule.n, rule.m)
    fractions, counts, layerwise = parse_amount(amount, scope, len(weights))
    refuse_sharded("prune_", "weights", weights)
    refuse_sharded("prune_", "masks", masks)
    weights, masks = local_list(weights), local_list(masks)
    check_tensors("prune_", "weights", weights)
    check_tensors("prune_", "masks", masks)
    if any(c > _INT64_MAX for c in counts):
        # Beyond int64 no schema can carry it, and no list holds that many entries: the
        # reference raises what the op would (a NaN anywhere first, then the count).
        return PruneStats.from_rows(reference.select_(weights, masks, fractions, counts,
                                                      layerwise), layerwise)
    return PruneStats.from_tensors(*prune_raw(weights, masks, fractions, counts, layerwise),
                                   layerwise)


def prune_nm(weights: Tensors, masks: Tensors, n: int, m: int) -> PruneStats:
    """prune_(weights, masks, scope=NM(n, m)) after its argument checks."""
    refuse_sharded("prune_", "weights", weights)
    refuse_sharded("prune_", "masks", masks)
    weights, masks = local_list(weights), local_list(masks)
    check_tensors("prune_", "weights", weights)
    check_tensors("prune_", "masks", masks)
    rows = [PruneStats(a, p, None) for a, p in _PRUNE_NM(weights, masks, n, m).tolist()]
    return PruneStats.from_rows(rows, True)


def _check_lists(op: str, **lists) -> None:
    """After the dispatcher refused a call: a list that is not one, or an item that is not a
    tensor, as the one-line TypeError prune_ gives (docs/semantics.md, "Errors and
    aliasing"); the caller re-raises the dispatcher's error when these pass. Run only on
    failure, so the optimizer step's hot path pays nothing."""
    for name, items in lists.items():
        check_tensors(op, name, items)


def masked_sgd_(params: Tensors, grads: Tensors, masks: Tensors, momentum_buffers: Tensors, *,
                lr: float, momentum: float = 0.0, dampening: float = 0.0,
                weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False,
                init_buffers: bool = False) -> None:
    """One torch.optim.SGD step on the alive entries, fused in one pass; pruned entries of the
    params and of their momentum buffers end exactly 0. momentum_buffers: one per param when
    momentum != 0 (with init_buffers=True on the first step: buffer = gradient), else empty.
    DTensors (FSDP2 shards) are updated through their local shards."""
    try:
        _MASKED_SGD(
            local_list(params), local_list(grads), local_list(masks),
            local_list(momentum_buffers), float(lr), float(momentum), float(dampening),
            float(weight_decay), bool(nesterov), bool(maximize), bool(init_buffers))
    except (TypeError, RuntimeError):
        _check_lists("masked_sgd_", params=params, grads=grads, masks=masks,
                     momentum_buffers=momentum_buffers)
        raise


def masked_adam_(params: Tensors, grads: Tensors, masks: Tensors, exp_avgs: Tensors,
                 exp_avg_sqs: Tensors, *, lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, step: float,
                 maximize: bool = False, max_exp_avg_sqs: Optional[Tensors] = None,
                 decoupled_weight_decay: bool = False) -> None:
    """One torch.optim.Adam step on the alive entries, fused in one pass; pruned entries of the
    params and of every moment end exactly 0. step: the step count after this step's
    increment (>= 1), shared by every tensor of the call. max_exp_avg_sqs: one per param for
    amsgrad, None without. decoupled_weight_decay: AdamW's decay of the weight (w *= 1 - lr *
    weight_decay) instead of Adam's L2 term in the gradient."""
    amsgrad = max_exp_avg_sqs is not None
    try:
        _MASKED_ADAM(
            local_list(params), local_list(grads), local_list(masks), local_list(exp_avgs),
            local_list(exp_avg_sqs), local_list(max_exp_avg_sqs) if amsgrad else [],
            float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
            float(step), amsgrad, bool(maximize), bool(decoupled_weight_decay))
    except (TypeError, RuntimeError):
        _check_lists("masked_adam_", params=params, grads=grads, masks=masks,
                     exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs,
                     **({"max_exp_avg_sqs": max_exp_avg_sqs} if amsgrad else {}))
        raise


def rewind_(params: Tensors, snapshot: Tensors, masks: Tensors) -> None:
    """params = snapshot where masks else 0, fused in one pass. rewind_(params, params, masks)
    zeroes the pruned entries in place. DTensors are rewound through their local shards."""
    try:
        _REWIND(local_list(params), local_list(snapshot), local_list(masks))
    except (TypeError, RuntimeError):
        _check_lists("rewind_", params=params, snapshot=snapshot, masks=masks)
        raise


def zero_pruned(params: Tensors, masks: Tensors):
    """A callable doing rewind_(params, params, masks) with the lists built once: for calling
    after every optimizer step, where the per-call Python work would otherwise cost more than
    the pass itself. The lists are checked by running the pass once now, so later calls
    cannot fail on them."""
    _check_lists("rewind_", params=params, masks=masks)
    params, masks = local_list(params), local_list(masks)
    _REWIND(params, params, masks)
    return lambda: _REWIND(params, params, masks)


def mask_distance(masks_a: Masks, masks_b: Masks, *, numels: Numels = None) -> MaskDistance:
    """How many entries of two mask sets differ (the normalized Hamming distance), in all and
    per tensor, as exact counts: MaskDistance(differ, total, layers), .value = differ / total.

    masks_a, masks_b: lists of torch.bool masks of matching shapes, or of bit-packed uint8 masks
    (lth_fast.pruning.ticket.pack_bits), which need numels, each mask's element count; or two
    dicts {name: mask} with the same keys in the same order (e.g. two Pruners' .masks), and
    then .per_layer is a dict. Padding bits of packed masks are not entries."""
    for name, given in (("masks_a", masks_a), ("masks_b", masks_b)):
        if not isinstance(given, dict):
            as_list("mask_distance", name, given)
    names, a, b, counts, totals = read_inputs(masks_a, masks_b, numels)
    differ = _MASK_DISTANCE(local_list(a), local_list(b), counts).tolist()
    return MaskDistance.from_counts(differ, totals, names)


def cpu_isa() -> str:
    """The CPU instruction set the kernels use now: 'scalar', 'avx2' or 'avx512'
    (LTH_FAST_CPU_ISA forces one)."""
    return torch.ops.lth_fast.cpu_isa.default()
