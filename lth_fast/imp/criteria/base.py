"""The criterion record and its registry (lth_fast.imp.criteria)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from torch import Tensor

from ...pruning import Pruner
from ..registry import Registry


@dataclass
class Scoring:
    """What a criterion may read: the pruner (its model and masks), the run's task (batches,
    loss) and device, and a seed for its own randomness (lth_fast.imp.streams).

    examples: what a data-dependent criterion (snip, grasp) reads, examples per class for a
    classifier or training batches for a language model; rounds and float64: SynFlow's number
    of rounds and its float64 pass (criteria/synflow.py)."""
    pruner: Pruner
    seed: int
    task: Any = None
    device: Any = "cpu"
    examples: int = 10
    rounds: int = 100
    float64: bool = False


def scoring(pruner: Pruner, seed: int, task, device, pruning) -> Scoring:
    """The Scoring of a run: its pruning config's pai_examples, synflow_rounds and
    synflow_float64 (lth_fast.imp.config.PruningConfig)."""
    return Scoring(pruner, seed, task, device, examples=pruning.pai_examples,
                   rounds=pruning.synflow_rounds, float64=pruning.synflow_float64)


@dataclass(frozen=True)
class Criterion:
    """name; scores(ctx: Scoring) -> {pruned tensor name: scores of its whole shape}, or None
    to rank the weights themselves. rounds(ctx, selection): a criterion that re-scores as it
    prunes (synflow) prunes ctx.pruner to `selection` (Pruner.prune's keywords) itself, in its
    own rounds; scores(ctx) is then one round. reads: the Scoring options it reads
    ("examples", "rounds", "float64"), so a config can refuse an option nothing reads."""
    name: str
    scores: Callable[[Scoring], Optional[Dict[str, Tensor]]]
    rounds: Optional[Callable[[Scoring, dict], Any]] = None
    reads: Tuple[str, ...] = ()

    def prune(self, ctx: Scoring, selection: dict):
        """Prunes ctx.pruner to `selection` by this criterion (one shot on its scores, or its
        own rounds), always through the fused selection; returns the last PruneStats."""
        if self.rounds is not None:
            return self.rounds(ctx, selection)
        return ctx.pruner.prune(**selection, scores=self.scores(ctx))


CRITERIA: Registry[Criterion] = Registry("criterion")
