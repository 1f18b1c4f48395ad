"""MaskedSGD: torch.optim.SGD that keeps pruned weights, and their momentum, at exactly 0
(docs/semantics.md, "Masked SGD"). Masked params take one fused masked_sgd_ pass per (device,
dtype, first step) of each param group; every other param takes torch's own SGD step."""
from __future__ import annotations

from collections import defaultdict
from typing import List, Mapping, Optional

import torch
from torch import Tensor

from ..ops.api import masked_sgd_
from .masked import ContiguousArgs, MaskedOptimizer, scalar


class MaskedSGD(MaskedOptimizer, torch.optim.SGD):
    """torch.optim.SGD whose update skips pruned entries: for every param with a mask, entries
    where the mask is False end each step with weight 0 and momentum 0, whatever the gradient.

    masks: None (no masking: exactly torch.optim.SGD), a Pruner (its current masks are used at
    every step, so pruning later needs no new optimizer), or a dict {param: bool mask of the
    param's shape and device} (kept by reference: changing them in place changes the masking).
    Every other argument is torch.optim.SGD's; differentiable=True is not supported.
    """

    _torch_optimizer = torch.optim.SGD

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: Optional[bool] = None, differentiable: bool = False,
                 fused: Optional[bool] = None, masks=None) -> None:
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov,
                         maximize=maximize, foreach=foreach, differentiable=differentiable,
                         fused=fused)
        if differentiable:
            raise ValueError("MaskedSGD updates the weights in place outside autograd: "
                             "differentiable=True is not supported")
        self._init_masks(masks)

    def _masked_step(self, group: dict, params: List[Tensor],
                     masks: Mapping[Tensor, Tensor]) -> None:
        momentum = group["momentum"]
        batches = defaultdict(list)  # (device, dtype, first step) -> [param]; one op call each
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError("MaskedSGD: sparse gradients are not supported for masked "
                                   "parameters")
            first = momentum != 0 and self.state[p].get("momentum_buffer") is None
            batches[(p.device, p.dtype, first)].append(p)
        hyper = dict(lr=scalar(group["lr"]), momentum=float(momentum),
                     dampening=float(group["dampening"]),
                     weight_decay=float(group["weight_decay"]), nesterov=group["nesterov"],
                     maximize=group["maximize"])
        for (_, _, first), ps in batches.items():
            self._fused_step(ps, masks, first, hyper)

    def _fused_step(self, ps: List[Tensor], masks, first: bool, hyper: dict) -> None:
        """One masked_sgd_ call. The op takes contiguous tensors: a non-contiguous param or
        buffer (e.g. channels_last) is updated through a contiguous copy written back after."""
        params, grads, ms, bufs = [], [], [], []
        contiguous = ContiguousArgs()
        for p in ps:
            params.append(contiguous(p.detach()))
            grads.append(p.grad.contiguous())
            ms.append(masks[p].contiguous())
            if hyper["momentum"] != 0:
                state = self.state[p]
                if first:
                    state["momentum_buffer"] = torch.empty_like(
                        p, memory_format=torch.contiguous_format)
                bufs.append(contiguous(state["momentum_buffer"]))
        masked_sgd_(params, grads, ms, bufs, init_buffers=first, **hyper)
        contiguous.write_back()
