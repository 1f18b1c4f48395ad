"""init: with late rewinding, the ticket's masks on the initial weights, trained from
iteration 0: rewinding to init as a second arm beside rewinding to k (Frankle et al. 2020)."""
from __future__ import annotations

from ...pruning.rule import need
from .. import streams
from .base import BRANCHES, Branch


def check(pruning):
    need(pruning.rewind == "iteration" and pruning.rewind_iteration > 0,
         "the 'init' arm (rewinding to init) of {0} is the second arm of late rewinding: it "
         "needs {1}='iteration' with {2} > 0", "controls", "rewind", "rewind_iteration")


def train(run, level, secs):
    model, pruner = run.masked_copy(streams.init(run.cfg.seed), secs)
    return run.train(model, pruner, 0, level, "init")


BRANCHES.register(Branch("init", tag=3, label="ticket masks, rewound to init", train=train,
                         style=("C3", "-.", "D"), check=check,
                         iterations=lambda cfg: cfg.training.iterations))  # from iteration 0
