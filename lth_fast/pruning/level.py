"""The one IMP level step, shared by the IMP driver (lth_fast.imp) and the framework callbacks
(lth_fast.integrations): prune, rewind the whole network to the rewind point (Pruner.rewind:
the pruned tensors to snapshot x mask, every other tensor copied back), clear the optimizers'
state, and put the learning-rate schedules back where they were there."""
from __future__ import annotations

import time
from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor

from ..ops import PruneStats
from .attach import unwrap_optimizer
from .pruner import Pruner


@torch.no_grad()
def next_level(pruner: Pruner, rule: Mapping, *, rewind: bool = True, optimizers: Sequence = (),
               schedules: Sequence = (), verify: bool = False,
               scores: Optional[Mapping[str, Tensor]] = None, where: str = "IMP",
               seconds: Optional[Dict[str, float]] = None) -> PruneStats:
    """One level step. rule: Pruner.prune's keywords (lth_fast.pruning.rule.PruneRule.args);
    scores: what ranks the entries instead of |w| (a criterion's); rewind=False keeps the
    trained weights (learning-rate rewinding); optimizers: their state is cleared; schedules: (SchedulePoint, scheduler)
    pairs, each scheduler put back to its point; seconds: {"prune", "rewind"} accumulate the
    time of each part. verify: replicas (DDP) check that their masks agree. Returns what prune
    did."""
    t0 = time.perf_counter()
    stats = pruner.prune(**rule, verify=verify, **({} if scores is None else
                                                    {"scores": scores}))
    t1 = time.perf_counter()
    if rewind:
        pruner.rewind()
    for opt in optimizers:
        unwrap_optimizer(opt, where).state.clear()
    for point, sched in schedules:
        point.restore(sched)
    if seconds is not None:
        seconds["prune"] = seconds.get("prune", 0.0) + t1 - t0
        seconds["rewind"] = seconds.get("rewind", 0.0) + time.perf_counter() - t1
    return stats


__all__ = ["next_level"]
