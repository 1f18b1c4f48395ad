"""The Pruner's persistence: state_dict / load_state_dict, lottery tickets on disk (bit-packed
masks plus the snapshot, lth_fast.ticket) and torch.nn.utils.prune interop (lth_fast.torch_prune).
A mixin of Pruner, kept apart so that pruner.py holds only the pruning itself; it uses the
Pruner's names, masks, _snapshot, _snapshot_device, _params() and _for_names()."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Mapping, Optional

import torch
from torch import Tensor, nn

from . import ticket, torch_prune

if TYPE_CHECKING:
    from .pruner import Pruner


class PrunerState:
    def state_dict(self) -> Dict[str, Tensor]:
        """{"<name>.mask": mask} plus {"<name>.snapshot": weights} once a snapshot is taken."""
        out = {f"{n}.mask": self.masks[n] for n in self.names}
        if self._snapshot is not None:
            out.update({f"{n}.snapshot": self._snapshot[n] for n in self.names})
        return out

    def load_state_dict(self, state_dict: Mapping[str, Tensor]) -> None:
        """Loads masks (in place, so optimizers holding them see the change) and the snapshot
        (or none, if the state_dict has none); everything is checked before anything changes."""
        masks = {n: state_dict.get(f"{n}.mask") for n in self.names}
        has_snap = any(k.endswith(".snapshot") for k in state_dict)
        want = {f"{n}.{part}" for n in self.names
                for part in (("mask", "snapshot") if has_snap else ("mask",))}
        if set(state_dict) != want:
            have = set(state_dict)
            raise ValueError(f"Pruner.load_state_dict: missing keys {sorted(want - have)}, "
                             f"unexpected keys {sorted(have - want)}")
        params = dict(zip(self.names, self._params()))
        for key, t in state_dict.items():
            n = key.rsplit(".", 1)[0]
            if not isinstance(t, Tensor) or t.shape != params[n].shape:
                got = list(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"Pruner.load_state_dict: {key} must be a tensor of shape "
                                 f"{list(params[n].shape)}, got {got}")
            if key.endswith(".mask") and t.dtype != torch.bool:
                raise TypeError(f"Pruner.load_state_dict: {key} must be torch.bool, got {t.dtype}")
        for n in self.names:
            self.masks[n].copy_(masks[n])
        self._snapshot = None
        if has_snap:
            self._snapshot = {n: state_dict[f"{n}.snapshot"].detach().to(
                self._snapshot_device or params[n].device, copy=True) for n in self.names}

    def save_ticket(self, path) -> None:
        """Writes masks (bit-packed) and snapshot to a safetensors file, atomically."""
        if self._snapshot is None:
            raise RuntimeError("Pruner.save_ticket: a ticket is masks plus the rewind-point "
                               "weights; call snapshot() first")
        ticket.save(path, self.names, self.masks, self._snapshot)

    def restore_ticket(self, path) -> "Pruner":
        """Loads a ticket's masks and snapshot into this pruner (checked first). The weights are
        not touched: call rewind() to start training the ticket."""
        names, masks, snap = ticket.load(path)
        if set(names) != set(self.names):
            raise ValueError(f"ticket {path}: tensors {sorted(set(self.names) - set(names))} "
                             f"are missing and {sorted(set(names) - set(self.names))} are not "
                             f"pruned by this pruner")
        self.load_state_dict({**{f"{n}.mask": masks[n] for n in names},
                              **{f"{n}.snapshot": snap[n] for n in names}})
        return self

    @classmethod
    def load_ticket(cls, path, model: nn.Module) -> "Pruner":
        """A Pruner over `model` for the tensors of a ticket file, with its masks and snapshot."""
        names, _, _ = ticket.load(path)
        missing = [n for n in names if n not in dict(model.named_parameters())]
        if missing:
            raise ValueError(f"ticket {path}: the model has no parameters {missing}")
        return cls._for_names(model, names).restore_ticket(path)

    def to_torch_prune(self, model: Optional[nn.Module] = None) -> nn.Module:
        """Applies the masks with torch.nn.utils.prune.custom_from_mask (weight_orig and
        weight_mask) to `model` (default: this pruner's, which it then no longer drives)."""
        model = self.model if model is None else model
        torch_prune.apply_masks(model, self.names, self.masks)
        return model

    @classmethod
    def from_torch_prune(cls, model: nn.Module) -> "Pruner":
        """A Pruner holding the masks of a model pruned with torch.nn.utils.prune, whose
        reparametrization is removed (weight = weight_orig * mask becomes the parameter)."""
        names, masks = torch_prune.remove_masks(model)
        self = cls._for_names(model, names)
        for n in names:
            self.masks[n].copy_(masks[n])
        return self
