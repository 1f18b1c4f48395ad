"""Which implementation of an op runs on a device: the fused kernel when lth_fast._C registers one
for that device type, else its pure-PyTorch twin in lth_fast.reference (the executable spec: same
semantics, same checks). So MaskedSGD and Pruner work on every device PyTorch does, and get the
fused pass wherever it exists (today: all ops on CPU, prune_ also on CUDA)."""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch

from . import ops, reference

_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


@functools.lru_cache(maxsize=None)
def has_fused_kernel(op: str, device_type: str) -> bool:
    """True when torch.ops.lth_fast.<op> has a kernel of its own for `device_type`."""
    key = _DISPATCH_KEYS.get(device_type)
    return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(
        f"lth_fast::{op}", key)


def _impl(op: str, tensors: Sequence[torch.Tensor]):
    device_type = tensors[0].device.type if tensors else "cpu"
    return getattr(ops if has_fused_kernel(op, device_type) else reference, op)


def prune_(weights, masks, amount, *, scope="global"):
    return _impl("prune_", weights)(weights, masks, amount, scope=scope)


def masked_sgd_(params, grads, masks, momentum_buffers, **hyper) -> None:
    _impl("masked_sgd_", params)(params, grads, masks, momentum_buffers, **hyper)


def masked_adam_(params, grads, masks, exp_avgs, exp_avg_sqs, **hyper) -> None:
    _impl("masked_adam_", params)(params, grads, masks, exp_avgs, exp_avg_sqs, **hyper)


def rewind_(params, snapshot, masks) -> None:
    _impl("rewind_", params)(params, snapshot, masks)


def zero_pruned(params: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> Callable[[], None]:
    """A callable doing rewind_(params, params, masks) (zero the pruned entries, in place) with
    the implementation chosen and the lists built once: for calling after every optimizer step,
    where the per-call Python work would otherwise cost more than the pass itself."""
    params, masks = list(params), list(masks)
    if not params:
        return lambda: None
    impl = (torch.ops.lth_fast.rewind_.default if has_fused_kernel("rewind_", params[0].device.type)
            else reference.rewind_)
    impl(params, params, masks)  # checks the lists now, so later calls cannot fail
    return functools.partial(impl, params, params, masks)
