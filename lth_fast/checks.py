"""Checks on lists of tensors for the pure-PyTorch reference: the twins of csrc/common, with the
same exception types and messages that name the list and the index."""
from __future__ import annotations

from typing import Optional, Sequence

import torch

FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def check_tensors(op: str, name: str, items: Sequence[object]) -> None:
    """Every item is a tensor (the op's schema cannot name the index of one that is not)."""
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


def check_sgd_hyperparameters(op: str, lr: float, momentum: float, dampening: float,
                              weight_decay: float, nesterov: bool) -> None:
    """torch.optim.SGD's rules, with the twin messages of csrc/common/sgd_checks.h."""
    if lr < 0:
        raise ValueError(f"{op}: invalid learning rate {lr}")
    if momentum < 0:
        raise ValueError(f"{op}: invalid momentum {momentum}")
    if weight_decay < 0:
        raise ValueError(f"{op}: invalid weight_decay {weight_decay}")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"{op}: nesterov momentum requires a momentum and zero dampening")


def check_adam_hyperparameters(op: str, lr: float, beta1: float, beta2: float, eps: float,
                               weight_decay: float, step: float) -> None:
    """torch.optim.Adam's rules and step >= 1, with the twin messages of
    csrc/common/adam_checks.h (written as `not (in range)` so that NaN fails too)."""
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
