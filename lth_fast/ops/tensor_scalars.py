"""masked_adam_ with the learning rate and the step count as 0-dim CPU tensors, for steps under
torch.compile: a Python float that changes from call to call (the step count, a scheduled lr)
is a constant of the compiled graph, so each new value would compile it again; a tensor is an
input of the graph, so one graph serves every step.

The op (lth_fast::masked_adam_tensor_) is opaque to the compiler. Its body reads the scalars
with .item(), which on a CPU tensor is a load, never a device synchronisation. It then calls
the fused lth_fast::masked_adam_ with them, so its results equal the float op's bit for bit.
`steps` holds each param's own step tensor (torch.optim.Adam's state["step"]), and they must
agree."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor

from .dtensors import local_list

_MASKED_ADAM = torch.ops.lth_fast.masked_adam_.default


def _cpu_scalar(name: str, t: Tensor) -> float:
    if not isinstance(t, Tensor) or t.dim() != 0 or t.device.type != "cpu":
        what = f"a {t.dim()}-dim tensor on {t.device}" if isinstance(t, Tensor) else \
            type(t).__name__
        raise ValueError(f"masked_adam_tensor_: {name} must be a 0-dim CPU tensor (read "
                         f"without a device sync), got {what}")
    return float(t.item())


@torch.library.custom_op("lth_fast::masked_adam_tensor_",
                         mutates_args=("params", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"))
def masked_adam_tensor_(params: List[Tensor], grads: List[Tensor], masks: List[Tensor],
                        exp_avgs: List[Tensor], exp_avg_sqs: List[Tensor],
                        max_exp_avg_sqs: List[Tensor], lr: Tensor, steps: List[Tensor],
                        beta1: float, beta2: float, eps: float, weight_decay: float,
                        amsgrad: bool, maximize: bool, decoupled_weight_decay: bool) -> None:
    if len(steps) != len(params):
        raise ValueError(f"masked_adam_tensor_: {len(steps)} step tensors for {len(params)} "
                         f"params")
    values = {_cpu_scalar(f"steps[{i}]", s) for i, s in enumerate(steps)}
    if len(values) > 1:
        raise ValueError(f"masked_adam_tensor_: the params' step counts differ "
                         f"({sorted(values)}); one call takes params of one step count")
    step = values.pop() if values else 1.0
    _MASKED_ADAM(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,
                 _cpu_scalar("lr", lr), beta1, beta2, eps, weight_decay, step, amsgrad,
                 maximize, decoupled_weight_decay)


@masked_adam_tensor_.register_fake
def _(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, lr, steps, beta1, beta2,
      eps, weight_decay, amsgrad, maximize, decoupled_weight_decay) -> None:
    return None


def masked_adam_tensors_(params: Sequence[Tensor], grads: Sequence[Tensor],
                         masks: Sequence[Tensor], exp_avgs: Sequence[Tensor],
                         exp_avg_sqs: Sequence[Tensor], *, lr: Tensor, steps: Sequence[Tensor],
                         beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                         weight_decay: float = 0.0, maximize: bool = False,
                         max_exp_avg_sqs=None, decoupled_weight_decay: bool = False) -> None:
    """lth_fast.masked_adam_ with lr and each param's step count as 0-dim CPU tensors."""
    amsgrad = max_exp_avg_sqs is not None
    masked_adam_tensor_(local_list(params), local_list(grads), local_list(masks),
                        local_list(exp_avgs), local_list(exp_avg_sqs),
                        local_list(max_exp_avg_sqs) if amsgrad else [], lr, list(steps),
                        float(beta1), float(beta2), float(eps), float(weight_decay), amsgrad,
                        bool(maximize), bool(decoupled_weight_decay))
