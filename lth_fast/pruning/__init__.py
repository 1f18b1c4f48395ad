"""Pruning for any training loop: the Pruner, which owns a MaskSet (masks and rewind snapshot);
the rules choosing which parameters it prunes (selection); the early-bird monitor
(early_bird); ticket files (ticket) and torch.nn.utils.prune interop (torch_prune), both
functions of a MaskSet."""
from .early_bird import EarlyBird
from .mask_set import MaskSet, PruneReport
from .pruner import Pruner
from .selection import DEFAULT_TYPES, select_parameters, transformer_weights

__all__ = ["Pruner", "EarlyBird", "MaskSet", "PruneReport", "select_parameters", "transformer_weights",
           "DEFAULT_TYPES"]
