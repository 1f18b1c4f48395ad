"""MaskedAdam and MaskedAdamW: torch.optim.Adam and torch.optim.AdamW that keep pruned weights,
and every moment of them, at exactly 0 (docs/semantics.md, "Masked Adam / AdamW"). Masked params
take one fused masked_adam_ pass per (device, dtype, step count) of each param group; every
other param takes torch's own step. The state per param is torch's own ('step' as a scalar
tensor, 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq' with amsgrad), so state_dicts load either way."""
from __future__ import annotations

from collections import defaultdict
from typing import List, Mapping

import torch
from torch import Tensor
from torch.optim.optimizer import _get_scalar_dtype

from ..ops.api import masked_adam_
from ..ops.tensor_scalars import masked_adam_tensors_
from .masked import ContiguousArgs, MaskedOptimizer, scalar


class _MaskedAdamSteps(MaskedOptimizer):
    """The masked step of Adam and AdamW (decoupled weight decay)."""

    _decoupled = False  # for param groups without the flag (a torch whose AdamW is no Adam)

    def _refuse_unsupported(self) -> None:
        name = type(self).__name__
        if self.defaults.get("differentiable"):
            raise ValueError(f"{name} updates the weights in place outside autograd: "
                             f"differentiable=True is not supported")
        for group in self.param_groups:
            self._check_group(group)

    def _check_group(self, group: dict) -> None:
        # torch.compile turns capturable on while it traces a torch optimizer's step; the
        # traced step passes its step counts as tensors, as capturable asks
        if group.get("capturable") and not torch.compiler.is_compiling():
            name = type(self).__name__
            raise NotImplementedError(
                f"{name} does not support capturable=True; use "
                f"torch.optim.{self._torch_optimizer.__name__} (with masking after each step)")

    def _state(self, group: dict, p: Tensor) -> dict:
        """torch's state for p, created as torch creates it."""
        state = self.state[p]
        if not state:
            fused = bool(group["fused"])
            state["step"] = (torch.zeros((), dtype=_get_scalar_dtype(is_fused=fused),
                                         device=p.device)
                             if fused else torch.tensor(0.0, dtype=_get_scalar_dtype()))
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _masked_step(self, group: dict, params: List[Tensor],
                     masks: Mapping[Tensor, Tensor]) -> None:
        if torch.compiler.is_compiling():
            return self._compiled_step(group, params, masks)
        batches = defaultdict(list)  # (device, dtype, step count) -> [param]; one op call each
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self._state(group, p)
            state["step"] += 1  # as torch: the count after this step's increment
            batches[(p.device, p.dtype, scalar(state["step"]))].append(p)
        beta1, beta2 = group["betas"]
        hyper = dict(lr=scalar(group["lr"]), beta1=scalar(beta1), beta2=scalar(beta2),
                     eps=float(group["eps"]), weight_decay=float(group["weight_decay"]),
                     maximize=group["maximize"],
                     decoupled_weight_decay=group.get("decoupled_weight_decay", self._decoupled))
        for (_, _, step), ps in batches.items():
            self._fused_step(ps, masks, step, group["amsgrad"], hyper)

    def _compiled_step(self, group: dict, params: List[Tensor],
                       masks: Mapping[Tensor, Tensor]) -> None:
        """The step as torch.compile traces it: the step counts and the lr reach the fused
        op as tensors (lth_fast.ops.tensor_scalars), never as Python floats, which the graph
        would hold as constants and recompile for at every new value. An lr given as a float
        stays a constant (wrap it in a tensor to schedule it without recompiling, as for
        torch's own compiled optimizers)."""
        batches = defaultdict(list)  # (device, dtype) -> [param]; each param's step passed
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self._state(group, p)
            state["step"] += 1
            batches[(p.device, p.dtype)].append(p)
        lr = group["lr"]
        lr = lr if isinstance(lr, Tensor) else torch.tensor(float(lr), dtype=torch.float64)
        beta1, beta2 = group["betas"]
        amsgrad = group["amsgrad"]
        for ps in batches.values():
            contiguous, lists = self._lists(ps, masks, amsgrad)
            masked_adam_tensors_(
                lists["params"], lists["grads"], lists["masks"], lists["exp_avg"],
                lists["exp_avg_sq"], max_exp_avg_sqs=lists["max_exp_avg_sq"] if amsgrad
                else None, lr=lr, steps=[self.state[p]["step"] for p in ps], beta1=beta1,
                beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                maximize=group["maximize"],
                decoupled_weight_decay=group.get("decoupled_weight_decay", self._decoupled))
            contiguous.write_back()

    def _lists(self, ps: List[Tensor], masks, amsgrad: bool):
        """The op's tensor lists for params `ps`; non-contiguous tensors through contiguous
        copies, which the returned ContiguousArgs writes back."""
        contiguous = ContiguousArgs()
        lists = defaultdict(list)
        for p in ps:
            state = self.state[p]
            lists["params"].append(contiguous(p.detach()))
            lists["grads"].append(p.grad.contiguous())
            lists["masks"].append(masks[p].contiguous())
            for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ()):
                lists[key].append(contiguous(state[key]))
        return contiguous, lists

    def _fused_step(self, ps: List[Tensor], masks, step: float, amsgrad: bool,
                    hyper: dict) -> None:
        """One masked_adam_ call."""
        contiguous, lists = self._lists(ps, masks, amsgrad)
        masked_adam_(lists["params"], lists["grads"], lists["masks"], lists["exp_avg"],
                     lists["exp_avg_sq"], max_exp_avg_sqs=lists["max_exp_avg_sq"] if amsgrad
                     else None, step=step, **hyper)
        contiguous.write_back()


class MaskedAdam(_MaskedAdamSteps, torch.optim.Adam):
    """torch.optim.Adam whose update skips pruned entries: for every param with a mask, entries
    where the mask is False end each step with weight 0 and every moment 0.

    masks: None (exactly torch.optim.Adam), a Pruner (its current masks at every step) or a dict
    {param: bool mask} kept by reference, as for MaskedSGD. Every other argument is
    torch.optim.Adam's (amsgrad and decoupled_weight_decay included); capturable=True and
    differentiable=True are not supported.
    """

    _torch_optimizer = torch.optim.Adam

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, masks=None,
                 **kwargs) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kwargs)
        self._refuse_unsupported()
        self._init_masks(masks)


class MaskedAdamW(_MaskedAdamSteps, torch.optim.AdamW):
    """torch.optim.AdamW (decoupled weight decay: w *= 1 - lr * weight_decay before the Adam
    update) whose update skips pruned entries, as MaskedAdam."""

    _torch_optimizer = torch.optim.AdamW
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, masks=None,
                 **kwargs) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kwargs)
        self._refuse_unsupported()
        self._init_masks(masks)
