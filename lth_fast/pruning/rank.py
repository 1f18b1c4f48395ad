"""How Pruner.prune and Pruner.draw select: what is ranked (the weights, or `scores` given in
their place), the per_layer amounts, one device and dtype per ranking, and errors that name the
parameter.

Scores are ranked by the same fused prune_ as |w| (|score| ascending, ties to the earlier
position), so exact k and the tie rule hold for every criterion: random pruning is magnitude
pruning of seeded random scores, and N:M (scope=NM(n, m)) keeps the n largest |score| of each
group. Scores are checked here before the op runs, except for NaN, which the op finds while it
reads them anyway (and which is reported under the score's name)."""
from __future__ import annotations

import re
from typing import Callable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .. import distributed
from ..distributed import shard_of
from ..ops import PruneStats
from ..ops.checks import FLOATS
from ..ops.dtensors import is_dtensor, is_sharded, local

Scores = Union[Mapping[str, Tensor], Sequence[Tensor]]  # by name, or in pruner.names order
Label = Optional[Callable[[int], str]]  # how messages name the op's weights[i]; None: weights


def select(op: str, names: Sequence[str], masks: List[Tensor], ranked: Sequence[Tensor],
           label: Label, amount, scope, per_layer, verify: bool) -> PruneStats:
    """Pruner.prune's selection on `masks` (the pruner's, or scratch masks like them), ranking
    `ranked` (the weights, or read_scores'); scope is "global", "layer" or an NM."""
    if per_layer:
        if scope != "layer":
            raise ValueError(f"{op}: per_layer amounts need scope='layer' (a global ranking "
                             f"takes one amount)")
        unknown = sorted(set(per_layer) - set(names))
        if unknown:
            raise ValueError(f"{op}: per_layer names {unknown} are not pruned tensors; they "
                             f"are {list(names)}")
        amount = [per_layer.get(name, amount) for name in names]
    if any(is_sharded(w) for w in ranked):
        return named_errors(names, label, distributed.prune_, ranked, masks, amount,
                            scope=scope, verify=verify)  # verify is for replicas: it refuses
    ranked = [local(w) for w in ranked]
    if len({w.device for w in ranked}) == 1 and len({w.dtype for w in ranked}) == 1:
        keys, work = [w.contiguous() for w in ranked], masks
    else:  # one ranking needs one device and dtype: upcasting keeps the |w| order exactly
        dtype = ranked[0].dtype
        for w in ranked[1:]:
            dtype = torch.promote_types(dtype, w.dtype)
        dev = ranked[0].device
        keys = [w.to(dev, dtype).contiguous() for w in ranked]
        work = [mask.to(dev, copy=True) for mask in masks]
    stats = named_errors(names, label, distributed.prune_, keys, work, amount, scope=scope,
                         verify=verify)
    if work is not masks:
        for mask, w in zip(masks, work):
            mask.copy_(w)
    return stats


def named_errors(names: Sequence[str], label: Label, fn, *args, **kwargs):
    """Runs an op; its errors name list[i], to which we add the parameter's name (or, for the
    op's weights[i], label(i): the score ranked in the weight's place)."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        def name(m):
            i = int(m.group(2))
            if i >= len(names):
                return m.group(0)
            if label is not None and m.group(1) == "weights":
                return label(i)
            return f"{m.group(0)} ({names[i]})"
        raise type(e)(re.sub(r"\b(weights|masks|params|snapshot)\[(\d+)\]", name,
                             str(e))) from e


def read_scores(op: str, names: Sequence[str], weights: Sequence[Tensor],
                scores: Scores) -> Tuple[List[Tensor], Label]:
    """(one score tensor per weight, ready to rank in its place; label(i): how messages name
    score i). A weight's score has the weight's shape; for a DTensor weight it may also have the
    local shard's shape (or be a DTensor placed as the weight), and it is then ranked as a
    DTensor placed as the weight, so a sharded ranking spans the ranks as for |w|. A score of the
    full shape is cut to this rank's rows (lth_fast.distributed.shard_of), so every rank may
    pass the same full tensors. Scores move to their weight's device; they are never written.
    Raises TypeError / ValueError naming the score, with nothing changed."""
    items, label = _items(op, names, scores)
    out = []
    for i, (w, s) in enumerate(zip(weights, items)):
        if not isinstance(s, Tensor):
            raise TypeError(f"{op}: {label(i)} must be a tensor, got {type(s).__name__}")
        if s.dtype not in FLOATS:
            raise TypeError(f"{op}: {label(i)} must be float32, float16, bfloat16 or float64, "
                            f"got {s.dtype}")
        s = s.detach()
        if is_dtensor(s):
            if not is_dtensor(w) or s.shape != w.shape or s.device_mesh != w.device_mesh \
                    or tuple(s.placements) != tuple(w.placements):
                where = (f"placed {tuple(w.placements)}" if is_dtensor(w) else "a plain tensor")
                raise ValueError(f"{op}: {label(i)} is a DTensor of shape {list(s.shape)} placed "
                                 f"{tuple(s.placements)}, but the weight is {where} of shape "
                                 f"{list(w.shape)}")
            s = s.to_local()
        elif s.shape != local(w).shape:
            if not (is_sharded(w) and s.shape == w.shape):
                shard = (f" (its local shard: {list(local(w).shape)})" if is_sharded(w) else "")
                raise ValueError(f"{op}: {label(i)} has shape {list(s.shape)} but the weight has "
                                 f"shape {list(w.shape)}{shard}")
            s = shard_of(s, w)
        s = s.to(local(w).device).contiguous()
        if is_dtensor(w):
            from torch.distributed.tensor import DTensor  # w is one: the module is loaded
            s = DTensor.from_local(s, w.device_mesh, w.placements, run_check=False,
                                   shape=w.shape, stride=w.stride())
        out.append(s)
    return out, label


def _items(op: str, names: Sequence[str], scores: Scores):
    if isinstance(scores, Mapping):
        known = set(names)
        extra = [k for k in scores if k not in known]
        if extra:
            raise ValueError(f"{op}: scores names {extra}, which are not pruned tensors; they "
                             f"are {list(names)}")
        missing = [n for n in names if n not in scores]
        if missing:
            raise ValueError(f"{op}: scores has no entry for {missing}; give one per pruned "
                             f"tensor ({list(names)})")
        return [scores[n] for n in names], lambda i: f"scores[{names[i]!r}]"
    if isinstance(scores, (list, tuple)):
        if len(scores) != len(names):
            raise ValueError(f"{op}: scores holds {len(scores)} tensors but {len(names)} are "
                             f"pruned; give one per name of pruner.names, in that order")
        return list(scores), lambda i: f"scores[{i}] ({names[i]})"
    raise TypeError(f"{op}: scores must be a dict {{name: tensor}} or a list in pruner.names "
                    f"order, got {type(scores).__name__}")
