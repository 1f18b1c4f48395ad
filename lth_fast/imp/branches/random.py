"""random: random masks with the ticket's sparsity in every tensor (for N:M, random N:M masks),
drawn by the `random` criterion from the branch's own stream through the same Pruner and fused
selection as the ticket, then the rewind point's weights under them, trained from the rewind
iteration (Frankle & Carbin 2019, "random pruning")."""
from __future__ import annotations

import time

from ...pruning.state import restore_dense
from .. import streams
from ..criteria import CRITERIA, Scoring
from .base import BRANCHES, Branch

TAG = 2


def train(run, level, secs):
    model, pruner = run.new_model(streams.init(run.cfg.seed))
    t0 = time.perf_counter()
    scores = CRITERIA["random"].scores(Scoring(pruner, streams.branch(run.cfg.seed, TAG, level),
                                               run.task, run.device))
    pruner.prune(**run.same_sparsity(), scores=scores)
    secs["prune"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    restore_dense(run.par.inner(model), run.rewind_state)
    pruner.apply()
    secs["rewind"] += time.perf_counter() - t0
    return run.train(model, pruner, run.cfg.pruning.rewind_iteration, level, "random")


BRANCHES.register(Branch("random", tag=TAG, label="random pruning", train=train,
                         style=("C2", ":", "^")))
