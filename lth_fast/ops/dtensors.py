"""DTensors at the front door. The ops' schemas take plain tensors (a custom op does not accept
a DTensor), so the elementwise ops (masked_sgd_, masked_adam_, rewind_) run on the local
shards: their result is the same whatever the sharding, as long as every tensor of one index
has the same placements. A ranking is not elementwise: prune_ accepts only replicated
DTensors, and sharded ones go through lth_fast.distributed.prune_."""
from __future__ import annotations

import sys
from typing import List, Sequence


def _dtensor_module():
    """torch.distributed.tensor if something imported it: until then no DTensor exists, and
    importing it here would add a second to `import lth_fast`."""
    return sys.modules.get("torch.distributed.tensor")


def is_dtensor(t) -> bool:
    mod = _dtensor_module()
    return mod is not None and isinstance(t, mod.DTensor)


def is_sharded(t) -> bool:
    """A DTensor placed other than Replicate() on some mesh dimension."""
    return is_dtensor(t) and not all(isinstance(p, _dtensor_module().Replicate)
                                     for p in t.placements)


def local(t):
    """The local shard of a DTensor (sharing its storage), else t itself."""
    return t.to_local() if is_dtensor(t) else t


def local_list(tensors: Sequence) -> List:
    """local() of each; without DTensors (the common case, on every optimizer step) a copy
    of the list and one lookup."""
    mod = _dtensor_module()
    if mod is None:
        return list(tensors)
    return [t.to_local() if isinstance(t, mod.DTensor) else t for t in tensors]


def refuse_sharded(op: str, name: str, tensors: Sequence) -> None:
    if _dtensor_module() is None:
        return
    for i, t in enumerate(tensors):
        if is_sharded(t):
            raise ValueError(f"{op}: {name}[{i}] is a sharded DTensor (placements "
                             f"{tuple(t.placements)}); a ranking over shards needs every rank: "
                             f"use lth_fast.distributed.prune_")
