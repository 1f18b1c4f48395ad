"""Interop with torch.nn.utils.prune, whose reparametrization keeps `<name>_orig` (a Parameter),
`<name>_mask` (a float buffer) and a forward pre-hook that recomputes `<name>` = orig * mask."""
from __future__ import annotations

from typing import Tuple

from torch import nn
from torch.nn.utils import prune as torch_prune

from .mask_set import MaskSet
from .selection import parameter_uses


def _split(name: str) -> Tuple[str, str]:
    module_name, _, local = name.rpartition(".")
    return module_name, local


def apply_masks(model: nn.Module, mask_set: MaskSet) -> None:
    """torch.nn.utils.prune.custom_from_mask on each masked parameter (checked first, so a bad
    model is left untouched). A tied parameter is refused: the reparametrization replaces one
    module's attribute, so the other modules would go on computing with unmasked weights."""
    names, masks = mask_set.names, mask_set.masks
    uses = {}
    for pid, name, *_ in parameter_uses(model):
        uses.setdefault(pid, []).append(name)
    for n in names:
        try:
            p = model.get_parameter(n)
        except AttributeError as e:
            raise ValueError(f"to_torch_prune: the model has no parameter {n!r}: {e}") from e
        if p.shape != masks[n].shape:
            raise ValueError(f"to_torch_prune: {n} has shape {list(p.shape)} but its mask has "
                             f"shape {list(masks[n].shape)}")
        others = [u for u in uses[id(p)] if u != n]
        if others:
            raise ValueError(f"to_torch_prune: {n} is tied to {others}; torch.nn.utils.prune "
                             f"would mask {n} alone and leave the others unmasked: untie them, "
                             f"or keep the masks in the Pruner (MaskedSGD / Pruner.apply)")
    for n in names:
        module_name, local = _split(n)
        module = model.get_submodule(module_name)
        mask = masks[n].to(getattr(module, local).device)
        torch_prune.custom_from_mask(module, local, mask)


def remove_masks(model: nn.Module) -> MaskSet:
    """Undoes every torch.nn.utils.prune reparametrization of `model` (weight = orig * mask
    becomes a plain Parameter again, the same Parameter object as `<name>_orig`) and returns the
    bool masks it held, by qualified name."""
    found = []
    for module_name, module in model.named_modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, torch_prune.BasePruningMethod):
                local = hook._tensor_name
                found.append((f"{module_name}.{local}" if module_name else local, module, local))
    if not found:
        raise ValueError(f"from_torch_prune: {type(model).__name__} has no parameter pruned with "
                         f"torch.nn.utils.prune (no <name>_orig / <name>_mask found)")
    names, masks = [], {}
    for name, module, local in found:
        masks[name] = getattr(module, local + "_mask") != 0
        torch_prune.remove(module, local)
        names.append(name)
    return MaskSet(names, masks)
