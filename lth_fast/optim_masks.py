"""What MaskedSGD and MaskedAdam share: where the masks come from (None, a Pruner read live at
every step, or a {param: mask} dict kept by reference), their checks, keeping them through
deepcopy and pickle, and passing non-contiguous tensors to the fused ops (which take contiguous
ones) through contiguous copies written back afterwards."""
from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

import torch
from torch import Tensor


def _is_mask_source(obj) -> bool:
    """A Pruner (or anything like one): masks looked up live at every step."""
    return callable(getattr(obj, "param_masks", None))


class MaskedOptimizerMixin:
    """Mask handling for a torch.optim.Optimizer subclass; messages name the subclass."""

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
                if m.shape != p.shape or m.device != p.device:
                    raise ValueError(f"{name}: a mask of shape {list(m.shape)} on {m.device} "
                                     f"was given for a parameter of shape {list(p.shape)} on "
                                     f"{p.device}")
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
                raise ValueError(f"{type(self).__name__}: a mask was given for a tensor of "
                                 f"shape {list(p.shape)} that is not a parameter of this "
                                 f"optimizer")

    def _masks_now(self) -> Mapping[Tensor, Tensor]:
        if self._mask_source is None:
            return self._mask_dict
        masks = self._mask_source.param_masks()
        self._check_known(masks)
        return masks


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
