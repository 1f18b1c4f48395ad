"""A Pruner's ticket on disk (Pruner.save_ticket, restore_ticket, load_ticket): the masks, the
pruned weights' snapshot and the other tensors of the network at the rewind point, in one file
(lth_fast.pruning.ticket), unsharded whatever the layout it was found on."""
from __future__ import annotations

import warnings

from .. import distributed
from ..ops.dtensors import is_sharded, local
from . import sharded, ticket
from .mask_set import MaskSet
from .state import model_tensors, placed


def save(pruner, path) -> None:
    """Writes the pruner's ticket (every rank calls it under FSDP2; rank 0 writes)."""
    params = pruner._lookup(pruner.names)
    ms = pruner.mask_set
    if any(is_sharded(p) for p in params):
        sharded.save_ticket(path, ms, params, pruner._dense, model_tensors(pruner.model))
    else:
        ticket.save(path, MaskSet(ms.names, ms.masks, ms.snapshot, pruner._dense))


def restore(pruner, path, rewind: bool):
    """Loads a ticket into `pruner` (every part checked before anything changes) and, with
    rewind, rewinds its model to it (once the model has values)."""
    loaded = ticket.load(path)
    names = pruner.names
    if set(loaded.names) != set(names):
        raise ValueError(f"ticket {path}: tensors {sorted(set(names) - set(loaded.names))} are "
                         f"missing and {sorted(set(loaded.names) - set(names))} are not pruned "
                         f"by this pruner")
    params = pruner._lookup(names)
    tensors = model_tensors(pruner.model)
    dense = None if loaded.dense is None else placed(pruner.model, names, {
        n: (distributed.shard_of(t, tensors[n]) if is_sharded(tensors.get(n)) else t)
        for n, t in loaded.dense.items()})
    if not any(is_sharded(p) for p in params):
        pruner.load_state_dict(loaded.state_dict())
    else:
        pruner.load_state_dict(sharded.shard_state(path, loaded, params))
        sharded.place_snapshot(pruner.mask_set, params)
    if dense is None:
        warnings.warn(f"ticket {path} carries no dense tensors (it was written before tickets "
                      f"held them): biases, norms and other unpruned tensors keep their "
                      f"values", stacklevel=3)
    pruner._dense = dense
    if rewind and not any(local(p).is_meta for p in params):
        pruner.rewind()
    return pruner
