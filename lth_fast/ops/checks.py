"""Argument checks of the ops in Python: the twins of csrc/common (tensor_list, op_checks), with
the same exception types and messages, which name the op, the list and the index. The reference
kernels run them first, so a bad call raises before anything is written (docs/semantics.md,
"Errors and aliasing")."""
from __future__ import annotations

from typing import Optional, Sequence

import torch

FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


# -- lists of tensors --------------------------------------------------------------------------
def as_list(op: str, name: str, items) -> list:
    """`items` (a list, tuple or other iterable of tensors, but not a tensor: iterating one
    would give its rows) as a list; anything else is the one-line TypeError check_tensors
    gives."""
    if items is None or isinstance(items, (torch.Tensor, str, bytes, dict)) or \
            not hasattr(items, "__iter__"):
        raise TypeError(f"{op}: {name} must be a list of tensors, got {type(items).__name__}")
    return list(items)


def check_tensors(op: str, name: str, items: Sequence[object]) -> None:
    """`items` is a list (or tuple) and every item a tensor: the op's schema cannot name the
    list, or the index of an item that is not a tensor."""
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{op}: {name} must be a list of tensors, got {type(items).__name__}")
    for i, t in enumerate(items):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {name}[{i}] must be a tensor, got {type(t).__name__}")


def check_float_list(op: str, name: str, tensors: Sequence[torch.Tensor]) -> None:
    check_tensors(op, name, tensors)
    device = tensors[0].device if tensors else None
    for i, t in enumerate(tensors):
        if t.dtype not in FLOATS:
            raise TypeError(f"{op}: {name}[{i}] must be float32, float16, bfloat16 or float64, "
                            f"got {t.dtype}")
        if t.dtype != tensors[0].dtype:
            raise TypeError(f"{op}: {name}[{i}] has dtype {t.dtype} but {name}[0] has "
                            f"{tensors[0].dtype}; one list holds one dtype")
        if t.device != device:
            raise ValueError(f"{op}: {name}[{i}] is on {t.device}, expected {device}")
        if not t.is_contiguous():
            raise ValueError(f"{op}: {name}[{i}] must be contiguous")


def check_like(op: str, name: str, tensors: Sequence[torch.Tensor], ref_name: str,
               ref: Sequence[torch.Tensor], dtype: Optional[torch.dtype]) -> None:
    if len(tensors) != len(ref):
        raise ValueError(f"{op}: {name} has {len(tensors)} tensors but {ref_name} has {len(ref)}")
    check_tensors(op, name, tensors)
    for i, (t, r) in enumerate(zip(tensors, ref)):
        want = dtype or r.dtype
        if t.dtype != want:
            raise TypeError(f"{op}: {name}[{i}] must be {want}, got {t.dtype}")
        if t.shape != r.shape:
            raise ValueError(f"{op}: {name}[{i}] has shape {list(t.shape)} but {ref_name}[{i}] "
                             f"has shape {list(r.shape)}")
        if t.device != r.device:
            raise ValueError(f"{op}: {name}[{i}] is on {t.device} but {ref_name}[{i}] is on "
                             f"{r.device}")
        if not t.is_contiguous():
            raise ValueError(f"{op}: {name}[{i}] must be contiguous")


def check_update_lists(op: str, params, grads, masks) -> None:
    """The lists every masked update op takes: params, grads like params, bool masks."""
    check_float_list(op, "params", params)
    check_like(op, "grads", grads, "params", params, None)
    check_like(op, "masks", masks, "params", params, torch.bool)


def check_state_list(op: str, name: str, tensors, params, wanted: bool, flag: str) -> None:
    """An optimizer-state list: like params when `wanted`, else empty (`flag` says why)."""
    if wanted:
        check_like(op, name, tensors, "params", params, None)
    elif tensors:
        raise ValueError(f"{op}: {name} must be empty when {flag}")


def check_no_overlap(op: str, lists) -> None:
    """The memory rule (csrc/common/overlap.h): no tensor of a written list shares a byte with
    another tensor of the call, except a read-only one that is exactly it (same bytes, dtype
    and index). lists: [(name, tensors, written)], in the op's argument order."""
    spans = []
    for li, (_, tensors, _) in enumerate(lists):
        for i, t in enumerate(tensors):
            size = t.numel() * t.element_size()
            if size:
                spans.append((t.data_ptr(), t.data_ptr() + size, li, i))
    spans.sort()
    pairs = []  # every overlapping pair; the first by position is reported, as in C++
    for a, (begin, end, la, ia) in enumerate(spans):
        for begin_b, end_b, lb, ib in spans[a + 1:]:
            if begin_b >= end:
                break
            wa, wb = lists[la][2], lists[lb][2]
            if not (wa or wb):
                continue
            if ((begin, end, ia) == (begin_b, end_b, ib) and wa != wb
                    and lists[la][1][ia].dtype == lists[lb][1][ib].dtype):
                continue
            pairs.append(tuple(sorted([(la, ia), (lb, ib)])))
    if pairs:
        (l1, i1), (l2, i2) = min(pairs)
        raise ValueError(f"{op}: {lists[l1][0]}[{i1}] and {lists[l2][0]}[{i2}] overlap in "
                         f"memory")


# -- the ops (memory=False: metadata only, as the fake kernels can check) --------------------
def check_amounts(fractions: Sequence[float], counts: Sequence[int], layerwise: bool,
                  n: int) -> None:
    """prune_'s amounts as the op takes them: exactly one of fractions / counts, one value or
    (layerwise) one per tensor; fractions in [0, 1], counts >= 0."""
    if layerwise and n == 0 and not fractions and not counts:
        return  # no tensor, no ranking: an empty list of amounts is one per tensor
    if bool(fractions) == bool(counts):
        raise ValueError("prune_: give exactly one of fractions and counts")
    given = len(fractions) or len(counts)
    if not (given == 1 or (layerwise and given == n)):
        what = ("layerwise amounts must be one value or one per tensor (" if layerwise
                else "a global ranking takes one amount (")
        raise ValueError(f"prune_: {what}{n} tensors), got {given}")
    for i, f in enumerate(fractions):
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"prune_: amount[{i}] = {f} is not a fraction in [0, 1]")
    for i, c in enumerate(counts):
        if c < 0:
            raise ValueError(f"prune_: amount[{i}] = {c} is a negative count")


def check_prune(weights, masks, fractions, counts, layerwise: bool, memory: bool = True) -> None:
    """Everything prune_ checks before it reads a weight."""
    check_float_list("prune_", "weights", weights)
    check_like("prune_", "masks", masks, "weights", weights, torch.bool)
    check_amounts(fractions, counts, layerwise, len(weights))
    if memory:
        check_no_overlap("prune_", [("weights", weights, False), ("masks", masks, True)])


def check_masked_sgd(params, grads, masks, momentum_buffers, lr: float, momentum: float,
                     dampening: float, weight_decay: float, nesterov: bool,
                     memory: bool = True) -> None:
    """The lists, and torch.optim.SGD's own rules on the hyperparameters."""
    op = "masked_sgd_"
    check_update_lists(op, params, grads, masks)
    if lr < 0:
        raise ValueError(f"{op}: invalid learning rate {lr}")
    if momentum < 0:
        raise ValueError(f"{op}: invalid momentum {momentum}")
    if weight_decay < 0:
        raise ValueError(f"{op}: invalid weight_decay {weight_decay}")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{op}: nesterov momentum requires a momentum and zero dampening")
    check_state_list(op, "momentum_buffers", momentum_buffers, params, momentum != 0,
                     "momentum is 0")
    if memory:
        check_no_overlap(op, [("params", params, True), ("grads", grads, False),
                              ("masks", masks, False), ("momentum_buffers", momentum_buffers, True)])


def check_masked_adam(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr: float,
                      beta1: float, beta2: float, eps: float, weight_decay: float, step: float,
                      amsgrad: bool, memory: bool = True) -> None:
    """The lists, torch.optim.Adam's rules on the hyperparameters and step >= 1 (the bias
    corrections divide by zero at step 0), written as `not (in range)` so that NaN fails too."""
    op = "masked_adam_"
    check_update_lists(op, params, grads, masks)
    check_like(op, "exp_avgs", exp_avgs, "params", params, None)
    check_like(op, "exp_avg_sqs", exp_avg_sqs, "params", params, None)
    check_state_list(op, "max_exp_avg_sqs", max_exp_avg_sqs, params, amsgrad, "amsgrad is off")
    if not lr >= 0:
        raise ValueError(f"{op}: invalid learning rate {lr}")
    if not 0 <= beta1 < 1:
        raise ValueError(f"{op}: invalid beta1 {beta1} (need 0 <= beta1 < 1)")
    if not 0 <= beta2 < 1:
        raise ValueError(f"{op}: invalid beta2 {beta2} (need 0 <= beta2 < 1)")
    if not eps >= 0:
        raise ValueError(f"{op}: invalid epsilon {eps}")
    if not weight_decay >= 0:
        raise ValueError(f"{op}: invalid weight_decay {weight_decay}")
    if not step >= 1:
        raise ValueError(f"{op}: invalid step {step} (the step count after this step's "
                         f"increment, >= 1)")
    if memory:
        check_no_overlap(op, [("params", params, True), ("grads", grads, False),
                              ("masks", masks, False), ("exp_avgs", exp_avgs, True),
                              ("exp_avg_sqs", exp_avg_sqs, True),
                              ("max_exp_avg_sqs", max_exp_avg_sqs, True)])


NM_MAX_M = 64  # csrc/common/op_checks.h kNmMaxM: the kernels keep a group's keys on the stack


def nm_geometry(shape):
    """(outer, channels, inner) of N:M selection: [O, C, *K] is [O, C, prod(K)], its groups of
    m running along C; a 1-D tensor is [1, C, 1], a 0-dim one [1, 1, 1]."""
    shape = tuple(shape)
    if len(shape) < 2:
        return 1, (shape[0] if shape else 1), 1
    inner = 1
    for d in shape[2:]:
        inner *= d
    return shape[0], shape[1], inner


def check_prune_nm(weights, masks, n: int, m: int, memory: bool = True) -> None:
    """prune_nm_: weights and masks as for prune_, 1 <= n <= m <= 64, and every tensor's input
    dimension a multiple of m."""
    check_float_list("prune_", "weights", weights)
    check_like("prune_", "masks", masks, "weights", weights, torch.bool)
    if not 1 <= n <= m <= NM_MAX_M:
        raise ValueError(f"prune_: N:M needs 1 <= n <= m <= {NM_MAX_M}, got n={n}, m={m}")
    for i, w in enumerate(weights):
        channels = nm_geometry(w.shape)[1]
        if channels % m:
            raise ValueError(f"prune_: weights[{i}] has shape {list(w.shape)}, whose input "
                             f"dimension ({channels} entries) is not a multiple of m = {m}")
    if memory:
        check_no_overlap("prune_", [("weights", weights, False), ("masks", masks, True)])


def check_rewind(params, snapshot, masks, memory: bool = True) -> None:
    check_float_list("rewind_", "params", params)
    check_like("rewind_", "snapshot", snapshot, "params", params, None)
    check_like("rewind_", "masks", masks, "params", params, torch.bool)
    if memory:
        check_no_overlap("rewind_", [("params", params, True), ("snapshot", snapshot, False),
                                     ("masks", masks, False)])


def check_mask_distance(masks_a, masks_b, numels) -> None:
    """masks_a: torch.bool masks, or bit-packed torch.uint8 ones (pack_bits: 1-D, ceil(n / 8)
    bytes), of one dtype, contiguous, on one device; masks_b like masks_a; numels empty for
    bool masks, one element count per mask for packed ones."""
    op = "mask_distance"
    check_tensors(op, "masks_a", masks_a)
    device = masks_a[0].device if masks_a else None
    for i, t in enumerate(masks_a):
        if t.dtype not in (torch.bool, torch.uint8):
            raise TypeError(f"{op}: masks_a[{i}] must be torch.bool or bit-packed torch.uint8, "
                            f"got {t.dtype}")
        if t.dtype != masks_a[0].dtype:
            raise TypeError(f"{op}: masks_a[{i}] has dtype {t.dtype} but masks_a[0] has "
                            f"{masks_a[0].dtype}; one list holds one dtype")
        if t.device != device:
            raise ValueError(f"{op}: masks_a[{i}] is on {t.device}, expected {device}")
        if not t.is_contiguous():
            raise ValueError(f"{op}: masks_a[{i}] must be contiguous")
    check_like(op, "masks_b", masks_b, "masks_a", masks_a, None)
    if not masks_a:
        if numels:
            raise ValueError(f"{op}: numels has {len(numels)} counts but masks_a has 0 tensors")
        return
    if masks_a[0].dtype == torch.bool:
        if numels:
            raise ValueError(f"{op}: numels is only for bit-packed uint8 masks; torch.bool "
                             f"masks count their own elements")
        return
    if not numels:
        raise ValueError(f"{op}: bit-packed uint8 masks need numels, the element count of each "
                         f"mask")
    if len(numels) != len(masks_a):
        raise ValueError(f"{op}: numels has {len(numels)} counts but masks_a has "
                         f"{len(masks_a)} tensors")
    for i, n in enumerate(numels):
        if n < 0:
            raise ValueError(f"{op}: numels[{i}] = {n} is negative")
        size = (n + 7) // 8
        if masks_a[i].dim() != 1 or masks_a[i].numel() != size:
            raise ValueError(f"{op}: masks_a[{i}] has shape {list(masks_a[i].shape)} but "
                             f"numels[{i}] = {n} packs into uint8 [{size}]")
