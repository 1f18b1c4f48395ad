"""The one IMP level step, shared by the IMP driver (lth_fast.imp) and the framework callbacks
(lth_fast.integrations): prune, rewind the pruned tensors (snapshot x mask) and every other
tensor of the model (biases, norms, running statistics) to the rewind point, clear the
optimizers' state, and put the learning-rate schedules back where they were there.

The tensors that are not pruned are kept by dense_state() at the rewind point, each rank its
own part of a sharded tensor; the pruned ones are the Pruner's snapshot."""
from __future__ import annotations

import time
from typing import Dict, Iterable, Mapping, Optional, Sequence

import torch
from torch import Tensor, nn

from ..ops import PruneStats
from ..ops.dtensors import local
from .attach import unwrap_optimizer
from .pruner import Pruner


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
def dense_state(model: nn.Module, skip: Iterable[str]) -> Dict[str, Tensor]:
    """A copy of this rank's part of every tensor of the model but those in `skip`."""
    skip = set(skip)
    return {n: local(t).detach().clone() for n, t in model_tensors(model).items()
            if n not in skip}


@torch.no_grad()
def restore_dense(model: nn.Module, saved: Mapping[str, Tensor]) -> None:
    """Copies a dense_state() back into the model."""
    tensors = model_tensors(model)
    for n, t in saved.items():
        local(tensors[n]).copy_(t)


@torch.no_grad()
def next_level(pruner: Pruner, rule: Mapping, *, dense: Optional[Mapping[str, Tensor]] = None,
               rewind: bool = True, optimizers: Sequence = (),
               schedules: Sequence = (), verify: bool = False,
               scores: Optional[Mapping[str, Tensor]] = None, where: str = "IMP",
               seconds: Optional[Dict[str, float]] = None) -> PruneStats:
    """One level step. rule: Pruner.prune's keywords (lth_fast.pruning.rule.PruneRule.args);
    scores: what ranks the entries instead of |w| (a criterion's); rewind=False keeps the
    trained weights (learning-rate rewinding); dense: the other tensors at the rewind point
    (dense_state); optimizers: their state is cleared; schedules: (SchedulePoint, scheduler)
    pairs, each scheduler put back to its point; seconds: {"prune", "rewind"} accumulate the
    time of each part. verify: replicas (DDP) check that their masks agree. Returns what prune
    did."""
    t0 = time.perf_counter()
    stats = pruner.prune(**rule, verify=verify, **({} if scores is None else
                                                    {"scores": scores}))
    t1 = time.perf_counter()
    if rewind:
        pruner.rewind()
        if dense is not None:
            restore_dense(pruner.model, dense)
    for opt in optimizers:
        unwrap_optimizer(opt, where).state.clear()
    for point, sched in schedules:
        point.restore(sched)
    if seconds is not None:
        seconds["prune"] = seconds.get("prune", 0.0) + t1 - t0
        seconds["rewind"] = seconds.get("rewind", 0.0) + time.perf_counter() - t1
    return stats


__all__ = ["dense_state", "model_tensors", "next_level", "restore_dense"]
