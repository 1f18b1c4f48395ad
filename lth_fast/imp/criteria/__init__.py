"""Criteria: what ranks the entries of the pruned tensors at a level. Each is a small file
registered in CRITERIA; the selection is always the fused prune_ on the scores a criterion
returns (lth_fast.pruning.Pruner.prune(scores=...)), so exactly k entries go and ties break by
position whatever the criterion.

A criterion is a Criterion record: its `name` and `scores(ctx) -> {tensor name: scores} or
None`, where ctx is a Scoring (the pruner, the run's task and device, and a seed of its own);
None ranks the weights themselves (|w|, without a copy). Scores have the shape of the whole (unsharded) tensor."""
from __future__ import annotations

from .base import CRITERIA, Criterion, Scoring
from . import magnitude, random  # noqa: F401  (each registers itself)

__all__ = ["CRITERIA", "Criterion", "Scoring"]
