"""What MaskedSGD, MaskedAdam and MaskedAdamW share. Each is a subclass of its torch optimizer
(so construction, its checks and messages, param groups, state_dict and schedulers are torch's
own) with this mixin first: where the masks come from (None, a Pruner read live at every step,
or a {param: mask} dict kept by reference), keeping them through deepcopy and pickle, and a
step that sends the masked params through one fused op and every other param through torch's
own step, untouched, so that without masks the optimizer is bit for bit torch's."""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..ops.dtensors import local


def _is_mask_source(obj) -> bool:
    """A Pruner (or anything like one): masks looked up live at every step."""
    return callable(getattr(obj, "param_masks", None))


def _unhooked(step):
    """A torch optimizer class's step without the hook wrapper torch adds to a class's step
    once it has an instance (Optimizer._patch_step_function): our own step, which calls it,
    carries the hooks already."""
    return step.__wrapped__ if getattr(step, "hooked", False) else step


class MaskedOptimizer:
    """Mask handling and the step for a torch.optim optimizer subclass (listed after this mixin,
    as `_torch_optimizer`); messages name the subclass. A subclass supplies _masked_step."""

    _torch_optimizer: type = torch.optim.Optimizer

    def _init_masks(self, masks) -> None:
        self._mask_source = None
        self._mask_dict: Dict[Tensor, Tensor] = {}
        self.set_masks(masks)

    def __getstate__(self):  # keep the masks through copy.deepcopy and pickle
        return {**super().__getstate__(), "_mask_source": self._mask_source,
                "_mask_dict": self._mask_dict}

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("_mask_source", None)
        self.__dict__.setdefault("_mask_dict", {})

    # -- the masks -----------------------------------------------------------------------------
    def set_masks(self, masks) -> None:
        """Replaces the masks: None, a Pruner, or a dict {param: bool mask} (see the class)."""
        name = type(self).__name__
        if masks is None:
            self._mask_source, self._mask_dict = None, {}
        elif _is_mask_source(masks):
            self._mask_source, self._mask_dict = masks, {}
            self._masks_now()  # checks now that its parameters are ours
        elif isinstance(masks, Mapping):
            checked = {}
            for p, m in masks.items():
                if not isinstance(p, Tensor):
                    raise TypeError(f"{name}: masks keys must be the parameters themselves, "
                                    f"got {type(p).__name__} (pass the Pruner itself, or "
                                    f"{{param: mask}})")
                if not isinstance(m, Tensor) or m.dtype != torch.bool:
                    what = m.dtype if isinstance(m, Tensor) else type(m).__name__
                    raise TypeError(f"{name}: the mask of a parameter of shape "
                                    f"{list(p.shape)} must be a torch.bool tensor, got {what}")
                lp = local(p)  # a DTensor (FSDP2) is masked by its local shard's shape
                if m.shape != lp.shape or m.device != lp.device:
                    raise ValueError(f"{name}: a mask of shape {list(m.shape)} on {m.device} "
                                     f"was given for a parameter of shape {list(lp.shape)} on "
                                     f"{lp.device}")
                checked[p] = m
            self._check_known(checked)
            self._mask_source, self._mask_dict = None, checked
        else:
            raise TypeError(f"{name}: masks must be None, a Pruner or a dict "
                            f"{{param: mask}}, got {type(masks).__name__}")

    def _check_known(self, masks: Mapping[Tensor, Tensor]) -> None:
        ours = {id(p) for g in self.param_groups for p in g["params"]}
        for p in masks:
            if id(p) not in ours:
                name_of = getattr(masks, "name_of", None)  # a Pruner's masks know the names
                what = f"{name_of(p)} (shape {list(p.shape)})" if name_of else \
                    f"a tensor of shape {list(p.shape)}"
                raise ValueError(f"{type(self).__name__}: a mask was given for {what} that is "
                                 f"not a parameter of this optimizer")

    def _masks_now(self) -> Mapping[Tensor, Tensor]:
        """The masks of this optimizer's parameters. A Pruner's masks of parameters outside
        it (frozen weights, another optimizer's share) are skipped, as attach skips them: those
        weights stay as prune() and rewind() leave them. A Pruner with no mask for any of them
        is a mistake, and an error."""
        if self._mask_source is None:
            return self._mask_dict
        masks = self._mask_source.param_masks()
        ours = {id(p) for g in self.param_groups for p in g["params"]}
        kept = {p: m for p, m in masks.items() if id(p) in ours}
        if masks and not kept:
            raise ValueError(f"{type(self).__name__}: none of the Pruner's {len(masks)} masks "
                             f"is for a parameter of this optimizer (another model's Pruner?)")
        return kept

    # -- the step ------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None):
        """One step of the torch optimizer; pruned entries of masked params, and of their
        state tensors, end exactly 0."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        masks = self._masks_now()
        plain: List[List[Tensor]] = []
        masked: List[List[Tensor]] = []
        for group in self.param_groups:
            self._check_group(group)
            plain.append([p for p in group["params"] if p not in masks])
            masked.append([p for p in group["params"] if p in masks and p.grad is not None])
        if any(plain):
            self._torch_step(plain)
        for group, params in zip(self.param_groups, masked):
            if params:
                self._masked_step(group, params, masks)
        return loss

    def _torch_step(self, params: Sequence[List[Tensor]]) -> None:
        """torch's own step over `params` (one list per param group) alone."""
        saved = [g["params"] for g in self.param_groups]
        try:
            for group, ps in zip(self.param_groups, params):
                group["params"] = ps
            _unhooked(self._torch_optimizer.step)(self)
        finally:
            for group, ps in zip(self.param_groups, saved):
                group["params"] = ps

    def _check_group(self, group: dict) -> None:
        """Refuses a group option the fused step lacks (a loaded state_dict may ask for it)."""

    def _masked_step(self, group: dict, params: List[Tensor],
                     masks: Mapping[Tensor, Tensor]) -> None:
        raise NotImplementedError


class ContiguousArgs:
    """Contiguous stand-ins for the tensors a fused op writes: a non-contiguous one (e.g.
    channels_last) is replaced by a contiguous copy, copied back by write_back()."""

    def __init__(self) -> None:
        self._pending: List[Tuple[Tensor, Tensor]] = []

    def __call__(self, t: Tensor) -> Tensor:
        if t.is_contiguous():
            return t
        c = t.contiguous()
        self._pending.append((t, c))
        return c

    def write_back(self) -> None:
        for target, copy in self._pending:
            target.copy_(copy)
        self._pending.clear()


def scalar(x) -> float:
    """A hyperparameter as a float (torch allows 1-element tensors for lr and betas)."""
    return float(x.item()) if isinstance(x, Tensor) else float(x)
