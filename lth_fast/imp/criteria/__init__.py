"""Criteria: what ranks the entries of the pruned tensors at a level. Each is a small file
registered in CRITERIA; the selection is always the fused prune_ on the scores a criterion
returns (lth_fast.pruning.Pruner.prune(scores=...)), so exactly k entries go and ties break by
position whatever the criterion.

A criterion is a Criterion record: its `name` and `scores(ctx) -> {tensor name: scores} or
None`, where ctx is a Scoring (the pruner, the run's task and device, and a seed of its own);
None ranks the weights themselves (|w|, without a copy). Scores have the shape of the whole (unsharded) tensor.
Criterion.prune(ctx, selection) prunes by one: one shot, or a criterion's own rounds (synflow).

Pruning at initialisation (Frankle et al. 2021): snip, grasp, grasp_abs, synflow and
magnitude_init, each with its paper, formula and what differs from the reference code in its
docstring; inputs.py is what they run the network on, rounds.py SynFlow's schedule."""
from __future__ import annotations

from .base import CRITERIA, Criterion, Scoring, scoring
# each registers itself; the pruning-at-initialisation ones after the two of IMP
from . import magnitude, random, snip, grasp, synflow, magnitude_init  # noqa: F401

__all__ = ["CRITERIA", "Criterion", "Scoring", "scoring"]
