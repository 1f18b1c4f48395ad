"""reinit: the ticket's masks on a fresh random initialisation (the branch's own stream),
trained from the rewind iteration (Frankle & Carbin 2019, "random reinitialization")."""
from __future__ import annotations

from .. import streams
from .base import BRANCHES, Branch


@BRANCHES.register
class Reinit(Branch):
    name = "reinit"
    tag = 1
    label = "random reinit"
    short = "random reinit"
    style = ("C1", "--", "s")   # matplotlib color, line style, marker

    @classmethod
    def train(cls, run, level, secs):
        seed = streams.branch(run.cfg.seed, cls.tag, level)
        model, pruner = run.masked_copy(streams.init(seed), secs)
        return run.train(model, pruner, run.cfg.pruning.rewind_iteration, level, cls.name)
