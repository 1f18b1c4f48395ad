"""Pruning at initialisation beside the ticket, with the ablations of Frankle, Dziugaite, Roy &
Carbin (ICLR 2021, "Pruning Neural Networks at Initialization: Why Are We Missing the Mark?").

For each criterion C of snip, grasp, grasp_abs, synflow and magnitude_init
(lth_fast.imp.criteria), three branches:

    C            the rewind point's network (the initialisation, unless the run rewinds late)
                 pruned by C to the level's density, then trained from the rewind iteration
                 with the run's hyperparameters, as the other controls are
    C_shuffled   C's masks shuffled uniformly within each pruned tensor (the per-layer
                 proportions kept, which entries survive randomised), on the same weights
    C_reinit     C's masks on a fresh initialisation (the surviving weights re-drawn)

The density is the level's: with the run's scope "layer", every tensor keeps what the ticket
keeps (the rule's per-layer proportions, as the random control); with scope "global", C ranks
all pruned tensors at once and keeps the ticket's total count, so C chooses the proportions.
The selection is the fused prune_ (exactly k, ties to the earlier position); synflow prunes in
its own rounds. C's masks come from C's own stream (the same for its two ablations), the
shuffle and the re-initialisation from their branches' streams.

pruning.pai_levels restricts them to some pruned levels (the others train the ticket and the
other controls only). Scope "nm" is refused (a pattern, not a density), and so is a model
sharded with FSDP2 (the criteria score a whole copy of the network on one process)."""
from __future__ import annotations

import time

import torch

from ...pruning.rule import need
from ...pruning.state import restore_dense
from .. import streams
from ..criteria import CRITERIA, scoring
from .base import BRANCHES, Branch

# each criterion's tags: its own (the scores' stream), then its shuffle's and its reinit's
TAGS = {"snip": 20, "grasp": 23, "grasp_abs": 26, "synflow": 29, "magnitude_init": 32}
COLORS = {"snip": "C4", "grasp": "C5", "grasp_abs": "C6", "synflow": "C8", "magnitude_init": "C9"}
LABELS = {"snip": "SNIP", "grasp": "GraSP", "grasp_abs": "GraSP (abs)", "synflow": "SynFlow",
          "magnitude_init": "magnitude at init"}


def selection(run) -> dict:
    """Pruner.prune's keywords for the level's density: the ticket's count in every tensor
    (scope "layer") or in all of them (scope "global")."""
    same = run.same_sparsity()
    if run.cfg.pruning.scope == "global":
        return dict(amount=sum(same["per_layer"].values()), scope="global")
    return same


def pruned_at_init(run, criterion: str, level: int, secs):
    """(model, pruner): the rewind point's network pruned by `criterion` to the level's
    density."""
    if run.par.mode == "fsdp":
        raise ValueError(f"the pruning-at-init branch {criterion!r} scores a whole copy of the "
                         f"network on one process; it does not run under --fsdp")
    model, pruner = run.new_model(streams.init(run.cfg.seed))
    restore_dense(run.par.inner(model), run.rewind_state)
    t0 = time.perf_counter()
    ctx = scoring(pruner, streams.branch(run.cfg.seed, TAGS[criterion], level), run.task,
                  run.device, run.cfg.pruning)
    CRITERIA[criterion].prune(ctx, selection(run))
    secs["prune"] += time.perf_counter() - t0
    return model, pruner


def trainer(criterion: str, variant: str):
    name = criterion + variant
    tag = TAGS[criterion] + ("", "_shuffled", "_reinit").index(variant)

    def train(run, level, secs):
        model, pruner = pruned_at_init(run, criterion, level, secs)
        if variant == "_shuffled":
            gen = torch.Generator().manual_seed(streams.branch(run.cfg.seed, tag, level))
            t0 = time.perf_counter()
            for n in pruner.names:
                mask = pruner.masks[n]
                perm = torch.randperm(mask.numel(), generator=gen).to(mask.device)
                mask.copy_(mask.reshape(-1)[perm].reshape(mask.shape))
            restore_dense(run.par.inner(model), run.rewind_state)  # the weights prune zeroed
            pruner.apply()
            secs["rewind"] += time.perf_counter() - t0
        elif variant == "_reinit":
            source = pruner
            model, pruner = run.new_model(streams.branch(run.cfg.seed, tag, level))
            t0 = time.perf_counter()
            for n in pruner.names:
                pruner.masks[n].copy_(source.masks[n])
            pruner.apply()
            secs["rewind"] += time.perf_counter() - t0
        return run.train(model, pruner, run.cfg.pruning.rewind_iteration, level, name)
    return name, tag, train


def check(pruning) -> None:
    need(pruning.scope != "nm", "pruning at initialisation ({0}) prunes to the level's "
         "density; {1} 'nm' keeps a pattern and has none", "controls", "scope")


def runs_at(cfg, level: int) -> bool:
    return not cfg.pruning.pai_levels or level in cfg.pruning.pai_levels


for _criterion in TAGS:
    for _variant, _line, _marker, _what in (("", "-", "P", ""),
                                            ("_shuffled", ":", "x", ", shuffled in each layer"),
                                            ("_reinit", "--", "+", ", reinitialised")):
        _name, _tag, _train = trainer(_criterion, _variant)
        BRANCHES.register(Branch(_name, tag=_tag, train=_train, check=check, runs_at=runs_at,
                                 criterion=_criterion, label=LABELS[_criterion] + _what,
                                 style=(COLORS[_criterion], _line, _marker)))
