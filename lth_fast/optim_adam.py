"""MaskedAdam: a drop-in for torch.optim.Adam that keeps pruned weights, and both their moments,
at exactly 0. Masked parameters take one fused lth_fast.masked_adam_ pass per (device, dtype,
step count) of each param group; unmasked ones (biases, norms, or everything when masks is
None) take torch's own functional Adam, so with no masks MaskedAdam is bit for bit
torch.optim.Adam and keeps no all-True masks in memory. The state per param is Adam's own
('step' as a scalar tensor, 'exp_avg', 'exp_avg_sq'), so state_dicts load either way."""
from __future__ import annotations

import inspect
from collections import defaultdict
from typing import Callable, List, Mapping, Optional

import torch
from torch import Tensor
from torch.optim.adam import adam as _torch_adam
from torch.optim.optimizer import Optimizer, _get_scalar_dtype

from . import kernels
from .optim_masks import ContiguousArgs, MaskedOptimizerMixin

# Newer torch has AdamW folded into Adam; its param groups carry the flag (always False here).
_HAS_DECOUPLED = "decoupled_weight_decay" in inspect.signature(torch.optim.Adam).parameters
_UNSUPPORTED = {"amsgrad": "amsgrad=True", "capturable": "capturable=True",
                "decoupled_weight_decay": "decoupled_weight_decay=True (AdamW)"}


def _scalar(x) -> float:
    return float(x.item()) if isinstance(x, Tensor) else float(x)


class MaskedAdam(MaskedOptimizerMixin, Optimizer):
    """torch.optim.Adam (amsgrad off, L2 weight decay) whose update skips pruned entries: for
    every param with a mask, entries where the mask is False end each step with weight 0 and
    both moments 0, whatever the gradient.

    masks: None, a Pruner (its current masks are used at every step) or a dict {param: bool
    mask} kept by reference, as for MaskedSGD. foreach / fused choose torch's implementation
    for the unmasked params. amsgrad, capturable and decoupled_weight_decay are not supported.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *,
                 foreach: Optional[bool] = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False,
                 fused: Optional[bool] = None, decoupled_weight_decay: bool = False,
                 masks=None) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        betas = (_scalar(betas[0]), _scalar(betas[1]))
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise ValueError("MaskedAdam updates the weights in place outside autograd: "
                             "differentiable=True is not supported")
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=False, fused=fused)
        if _HAS_DECOUPLED:
            defaults["decoupled_weight_decay"] = decoupled_weight_decay
        self._check_supported(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:  # a group may override a default
            self._check_supported(group)
        self._init_masks(masks)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # as Adam: state_dicts of older versions lack these
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("fused", None)
            if _HAS_DECOUPLED:
                group.setdefault("decoupled_weight_decay", False)

    @staticmethod
    def _check_supported(group: dict) -> None:
        for key, what in _UNSUPPORTED.items():
            if group.get(key):
                raise NotImplementedError(f"MaskedAdam does not support {what}; use "
                                          f"torch.optim.Adam (with masking after each step)")

    # -- the step ------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None):
        """One Adam step; pruned entries of masked params (and both moments) end exactly 0."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        masks = self._masks_now()
        for group in self.param_groups:
            self._check_supported(group)  # a loaded state_dict may ask for what we lack
            self._step_group(group, masks)
        return loss

    def _state(self, p: Tensor, fused: bool) -> dict:
        """Adam's state for p, created as torch.optim.Adam creates it."""
        state = self.state[p]
        if not state:
            state["step"] = (torch.zeros((), dtype=_get_scalar_dtype(is_fused=True),
                                         device=p.device)
                             if fused else torch.tensor(0.0, dtype=_get_scalar_dtype()))
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _step_group(self, group: dict, masks: Mapping[Tensor, Tensor]) -> None:
        beta1, beta2 = group["betas"]
        plain = defaultdict(list)  # name -> list, for torch's functional adam
        fused = defaultdict(list)  # (device, dtype, step count) -> [param]; one op call each
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("MaskedAdam does not support sparse gradients")
            state = self._state(p, bool(group["fused"]) and p not in masks)
            if p not in masks:
                for key, t in (("params", p), ("grads", p.grad), ("exp_avgs", state["exp_avg"]),
                               ("exp_avg_sqs", state["exp_avg_sq"]),
                               ("state_steps", state["step"])):
                    plain[key].append(t)
                continue
            state["step"] += 1  # as Adam: the count after this step's increment
            fused[(p.device, p.dtype, _scalar(state["step"]))].append(p)
        if plain["params"]:
            _torch_adam(plain["params"], plain["grads"], plain["exp_avgs"], plain["exp_avg_sqs"],
                        [], plain["state_steps"], foreach=group["foreach"], fused=group["fused"],
                        has_complex=any(torch.is_complex(p) for p in plain["params"]),
                        amsgrad=False, beta1=beta1, beta2=beta2, lr=group["lr"],
                        weight_decay=group["weight_decay"], eps=group["eps"],
                        maximize=group["maximize"])
        hyper = dict(lr=_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                     weight_decay=group["weight_decay"], maximize=group["maximize"])
        for (_, _, step), ps in fused.items():
            self._fused_step(ps, masks, step, hyper)

    def _fused_step(self, ps: List[Tensor], masks, step: float, hyper: dict) -> None:
        """One masked_adam_ call (non-contiguous tensors through contiguous copies)."""
        contiguous = ContiguousArgs()
        lists = defaultdict(list)
        for p in ps:
            state = self.state[p]
            lists["params"].append(contiguous(p.detach()))
            lists["grads"].append(p.grad.contiguous())
            lists["masks"].append(masks[p].contiguous())
            lists["exp_avgs"].append(contiguous(state["exp_avg"]))
            lists["exp_avg_sqs"].append(contiguous(state["exp_avg_sq"]))
        kernels.masked_adam_(lists["params"], lists["grads"], lists["masks"], lists["exp_avgs"],
                             lists["exp_avg_sqs"], step=step, **hyper)
        contiguous.write_back()
