"""The criterion record and its registry (lth_fast.imp.criteria)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from torch import Tensor

from ...pruning import Pruner
from ..registry import Registry


@dataclass
class Scoring:
    """What a criterion may read: the pruner (its model and masks), the run's task (batches,
    loss) and device, and a seed for its own randomness (lth_fast.imp.streams)."""
    pruner: Pruner
    seed: int
    task: Any = None
    device: Any = "cpu"


@dataclass(frozen=True)
class Criterion:
    """name; scores(ctx: Scoring) -> {pruned tensor name: scores of its whole shape}, or None
    to rank the weights themselves."""
    name: str
    scores: Callable[[Scoring], Optional[Dict[str, Tensor]]]


CRITERIA: Registry[Criterion] = Registry("criterion")
