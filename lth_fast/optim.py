"""MaskedSGD: a drop-in for torch.optim.SGD that keeps pruned weights, and their momentum, at
exactly 0 (DESIGN 1b). Masked parameters take one fused lth_fast.masked_sgd_ pass per
(device, dtype) of each param group; unmasked ones (biases, norms, or everything when masks is
None) take torch's own functional SGD, so with no masks MaskedSGD is bit for bit
torch.optim.SGD and keeps no all-True masks in memory. Momentum buffers live in
state[p]["momentum_buffer"] like SGD's, so state_dicts load either way."""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, List, Mapping, Optional

import torch
from torch import Tensor
from torch.optim.optimizer import Optimizer
from torch.optim.sgd import sgd as _torch_sgd

from . import kernels
from .optim_masks import ContiguousArgs, MaskedOptimizerMixin


class MaskedSGD(MaskedOptimizerMixin, Optimizer):
    """torch.optim.SGD whose update skips pruned entries: for every param with a mask, entries
    where the mask is False end each step with weight 0 and momentum 0, whatever the gradient.

    masks: None (no masking), a Pruner (its current masks are used at every step, so pruning
    later needs no new optimizer), or a dict {param: bool mask of the param's shape and device}
    (the tensors are kept by reference: changing them in place changes the masking).
    foreach / fused choose torch's implementation for the unmasked params, as in SGD.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, differentiable: bool = False,
                 fused: Optional[bool] = None, masks=None) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        if differentiable:
            raise ValueError("MaskedSGD updates the weights in place outside autograd: "
                             "differentiable=True is not supported")
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=False, fused=fused)
        super().__init__(params, defaults)
        self._init_masks(masks)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # as SGD: state_dicts of older versions lack these
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    # -- the step ------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None):
        """One SGD step; pruned entries of masked params (and their buffers) end exactly 0."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        masks = self._masks_now()
        for group in self.param_groups:
            self._step_group(group, masks)
        return loss

    def _step_group(self, group: dict, masks: Mapping[Tensor, Tensor]) -> None:
        momentum = group["momentum"]
        plain_p: List[Tensor] = []
        plain_g: List[Tensor] = []
        plain_b: List[Optional[Tensor]] = []
        fused = defaultdict(list)  # (device, dtype, first step) -> [param]; one op call each
        for p in group["params"]:
            if p.grad is None:
                continue
            buf = self.state[p].get("momentum_buffer") if momentum != 0 else None
            if p not in masks:
                plain_p.append(p)
                plain_g.append(p.grad)
                if momentum != 0:
                    plain_b.append(buf)
                continue
            if p.grad.is_sparse:
                raise RuntimeError("MaskedSGD: sparse gradients are not supported for masked "
                                   "parameters")
            fused[(p.device, p.dtype, momentum != 0 and buf is None)].append(p)

        hyper = dict(lr=float(group["lr"]), momentum=float(momentum),
                     dampening=float(group["dampening"]),
                     weight_decay=float(group["weight_decay"]), nesterov=group["nesterov"],
                     maximize=group["maximize"])
        if plain_p:
            _torch_sgd(plain_p, plain_g, plain_b,
                       has_sparse_grad=any(g.is_sparse for g in plain_g),
                       foreach=group["foreach"], fused=group["fused"], **hyper)
            for p, b in zip(plain_p, plain_b):
                self.state[p]["momentum_buffer"] = b
        for (_, _, first), ps in fused.items():
            self._fused_step(ps, masks, first, hyper)

    def _fused_step(self, ps: List[Tensor], masks, first: bool, hyper: dict) -> None:
        """One masked_sgd_ call. The op takes contiguous tensors: a non-contiguous param or
        buffer (e.g. channels_last) is updated through a contiguous copy written back after."""
        params, grads, ms, bufs = [], [], [], []
        contiguous = ContiguousArgs()
        for p in ps:
            params.append(contiguous(p.detach()))
            grads.append(p.grad.contiguous())
            m = masks[p]
            ms.append(m.contiguous())
            if hyper["momentum"] != 0:
                state = self.state[p]
                if first:
                    state["momentum_buffer"] = torch.empty_like(
                        p, memory_format=torch.contiguous_format)
                bufs.append(contiguous(state["momentum_buffer"]))
        kernels.masked_sgd_(params, grads, ms, bufs, init_buffers=first, **hyper)
        contiguous.write_back()
