"""reinit: the ticket's masks on a fresh random initialisation (the branch's own stream),
trained from the rewind iteration (Frankle & Carbin 2019, "random reinitialization")."""
from __future__ import annotations

from .. import streams
from .base import BRANCHES, Branch

TAG = 1


def train(run, level, secs):
    model, pruner = run.masked_copy(streams.branch(run.cfg.seed, TAG, level), secs)
    return run.train(model, pruner, run.cfg.pruning.rewind_iteration, level, "reinit")


BRANCHES.register(Branch("reinit", tag=TAG, label="random reinit", train=train,
                         style=("C1", "--", "s")))
