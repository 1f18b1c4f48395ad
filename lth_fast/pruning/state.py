"""The tensors of a model that a rewind puts back: every parameter and persistent buffer, by
state_dict name, each once. The Pruner keeps the pruned ones in its MaskSet's snapshot (and
rewinds them as snapshot x mask); the others (biases, norms, running statistics, embeddings)
are copied whole, each rank its own part of a sharded one."""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional

import torch
from torch import Tensor, nn

from ..ops.dtensors import local


def model_tensors(model: nn.Module) -> Dict[str, Tensor]:
    """Every parameter and persistent buffer of the model by state_dict name, each once (a
    tied weight under its first name)."""
    state = model.state_dict(keep_vars=True)
    seen, out = set(), {}
    for name, t in state.items():
        if id(t) not in seen:
            seen.add(id(t))
            out[name] = t
    return out


@torch.no_grad()
def dense_state(model: nn.Module, skip: Iterable[str],
                device: Optional[torch.device] = None) -> Dict[str, Tensor]:
    """A copy of this rank's part of every tensor of the model but those in `skip`, beside
    each tensor or on `device`."""
    skip = set(skip)
    return {n: local(t).detach().to(device or local(t).device, copy=True)
            for n, t in model_tensors(model).items() if n not in skip}


@torch.no_grad()
def restore_dense(model: nn.Module, saved: Mapping[str, Tensor]) -> None:
    """Copies a dense_state() (or any {name: this rank's part}) back into the model."""
    tensors = model_tensors(model)
    for n, t in saved.items():
        local(tensors[n]).copy_(local(t))


def placed(model: nn.Module, skip: Iterable[str],
           tensors: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Copies of `tensors` ({name: this rank's part}, e.g. read from a file), checked to be
    every tensor of the model but those in `skip`, each of its part's shape, and placed beside
    it (on the CPU while it is on the meta device, until it is materialised). Raises before
    anything is copied."""
    want = dense_state(model, skip, torch.device("meta"))
    if set(tensors) != set(want):
        raise ValueError(f"Pruner.load_rewind_state: missing tensors "
                         f"{sorted(set(want) - set(tensors))}, unexpected tensors "
                         f"{sorted(set(tensors) - set(want))}")
    for n, t in tensors.items():
        if not isinstance(t, Tensor) or t.shape != want[n].shape:
            raise ValueError(f"Pruner.load_rewind_state: {n} must be a tensor of shape "
                             f"{list(want[n].shape)}")
    current = {n: local(t) for n, t in model_tensors(model).items()}
    return {n: t.detach().to("cpu" if current[n].is_meta else current[n].device, copy=True)
            for n, t in tensors.items()}


__all__ = ["dense_state", "model_tensors", "placed", "restore_dense"]
