"""Loads lth_fast._C, which defines every op (csrc/ops.cpp) and registers its CPU and CUDA
kernels, and completes each op for the dispatcher: a fake kernel, so torch.compile can trace it,
and the pure-PyTorch reference as the default (CompositeExplicitAutograd) kernel, which serves
every device lth_fast._C has no kernel for, and calls whose lists are all empty."""
from __future__ import annotations

import functools
import importlib

import torch

from . import checks, reference
from .stats import to_tensors

_C = importlib.import_module("lth_fast._C")  # registers torch.ops.lth_fast.*
_DISPATCH_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


@functools.lru_cache(maxsize=None)
def has_fused_kernel(op: str, device_type: str) -> bool:
    """True when torch.ops.lth_fast.<op> has a kernel of its own for `device_type`."""
    key = _DISPATCH_KEYS.get(device_type)
    return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(
        f"lth_fast::{op}", key)


def _device(tensors):
    return tensors[0].device if tensors else torch.device("cpu")


# -- fakes: the outputs' metadata, for torch.compile ---------------------------------------------
# Each checks what a fake can (dtype, shape, device, contiguity; not memory or values), so that
# a call mixing meta tensors with real ones, which the dispatcher sends here, raises the op's
# own error instead of returning made-up results.
@torch.library.register_fake("lth_fast::prune_")
def _prune_fake(weights, masks, fractions, counts, layerwise):
    checks.check_prune(weights, masks, fractions, counts, layerwise, memory=False)
    groups = len(weights) if layerwise else 1
    device = _device(weights)
    return (torch.empty((groups, 2), dtype=torch.long, device=device),
            torch.empty((groups,), dtype=torch.double, device=device))


@torch.library.register_fake("lth_fast::masked_sgd_")
def _masked_sgd_fake(params, grads, masks, momentum_buffers, lr, momentum, dampening,
                     weight_decay, nesterov, maximize, init_buffers):
    checks.check_masked_sgd(params, grads, masks, momentum_buffers, lr, momentum, dampening,
                            weight_decay, nesterov, memory=False)


@torch.library.register_fake("lth_fast::masked_adam_")
def _masked_adam_fake(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, beta1,
                      beta2, eps, weight_decay, step, amsgrad, maximize, decoupled_weight_decay):
    checks.check_masked_adam(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr,
                             beta1, beta2, eps, weight_decay, step, amsgrad, memory=False)


@torch.library.register_fake("lth_fast::rewind_")
def _rewind_fake(params, snapshot, masks):
    checks.check_rewind(params, snapshot, masks, memory=False)


@torch.library.register_fake("lth_fast::prune_nm_")
def _prune_nm_fake(weights, masks, n, m):
    checks.check_prune_nm(weights, masks, n, m, memory=False)
    return torch.empty((len(weights), 2), dtype=torch.long, device=_device(weights))


@torch.library.register_fake("lth_fast::mask_distance")
def _mask_distance_fake(masks_a, masks_b, numels):
    checks.check_mask_distance(masks_a, masks_b, numels)
    return torch.empty((len(masks_a),), dtype=torch.long, device=_device(masks_a))


# -- defaults: the reference, with the op's own arguments ----------------------------------------
def prune_default(weights, masks, fractions, counts, layerwise):
    return to_tensors(reference.select_(weights, masks, fractions, counts, layerwise),
                      _device(weights))


def masked_sgd_default(params, grads, masks, momentum_buffers, lr, momentum, dampening,
                       weight_decay, nesterov, maximize, init_buffers):
    reference.masked_sgd_(params, grads, masks, momentum_buffers, lr=lr, momentum=momentum,
                          dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                          maximize=maximize, init_buffers=init_buffers)


def prune_nm_default(weights, masks, n, m):
    rows = reference.nm_select_(weights, masks, n, m)
    return torch.tensor([[r.alive_before, r.pruned] for r in rows], dtype=torch.long,
                        device=_device(weights)).reshape(len(rows), 2)


def mask_distance_default(masks_a, masks_b, numels):
    return torch.tensor(reference.mask_distance_counts(masks_a, masks_b, numels),
                        dtype=torch.long, device=_device(masks_a))


DEFAULTS = {"prune_": prune_default, "masked_sgd_": masked_sgd_default,
            "masked_adam_": reference.adam_step_, "rewind_": reference.rewind_,
            "prune_nm_": prune_nm_default, "mask_distance": mask_distance_default}
for _name, _kernel in DEFAULTS.items():
    torch.library.register_kernel(f"lth_fast::{_name}", None, _kernel)
