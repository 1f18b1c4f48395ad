"""What an experiment builds from its config: the model (initialised from a seed), its Pruner
(which tensors are pruned) and the per-layer rates of scope 'layer'. The run (driver), its
branches, lth_fast.imp.points and the analyses build through here, so every one of them prunes
the same tensors of the same network."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from ..models import output_layer
from ..pruning import Pruner
from ..pruning.rule import ConfigError
from ..pruning.selection import UnmatchedItem, transformer_weights
from .config import IMPConfig


def new_model(cfg: IMPConfig, task, seed: int, device=None) -> nn.Module:
    torch.manual_seed(seed)
    return task.new_model().to(device or cfg.run.device)


def new_pruner(model: nn.Module, cfg: IMPConfig) -> Pruner:
    """The model's pruned tensors: its own selection rule if it declares one (a GPT: the
    Linear weights of its blocks, lth_fast.pruning.selection.transformer_weights), else every
    Linear / Conv weight; pruning.ignore leaves more dense."""
    include = None
    if getattr(type(model), "SELECTION", None) == "transformer":
        include = transformer_weights(model)
    try:
        return Pruner(model, include=include, exclude=list(cfg.pruning.ignore) or None)
    except UnmatchedItem as e:  # a name in pruning.ignore that is not a pruned weight
        raise ConfigError(f"{{0}} names {e.item!r}, which is not a weight {cfg.model.name} "
                          f"prunes; they are {e.eligible}", "pruning.ignore",
                          prefix="IMPConfig: ") from None


def level_rates(cfg: IMPConfig, model: nn.Module, pruner: Pruner) -> Optional[Dict[str, float]]:
    """Per-layer rates for scope='layer' (the output layer at pruning.output_rate), else None;
    a pruning.layer_rates name that is not pruned is an error."""
    out = output_layer(model) if hasattr(type(model), "OUTPUT_LAYER") else None
    try:
        return cfg.pruning.rule.rates(pruner.names, out)
    except ConfigError as e:
        raise e.within("pruning", "IMPConfig: ") from None


__all__ = ["level_rates", "new_model", "new_pruner"]
