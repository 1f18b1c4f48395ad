"""init: with late rewinding, the ticket's masks on the initial weights, trained from
iteration 0: rewinding to init as a second arm beside rewinding to k (Frankle et al. 2020)."""
from __future__ import annotations

from ...pruning.rule import need
from .. import streams
from .base import BRANCHES, Branch


@BRANCHES.register
class Init(Branch):
    name = "init"
    tag = 3
    label = "ticket masks, rewound to init"
    short = "ticket masks, rewound to init"
    style = ("C3", "-.", "D")   # matplotlib color, line style, marker

    @staticmethod
    def check(pruning):
        need(pruning.rewind == "iteration" and pruning.rewind_iteration > 0,
             "the 'init' arm (rewinding to init) of {0} is the second arm of late rewinding: "
             "it needs {1}='iteration' with {2} > 0", "controls", "rewind", "rewind_iteration")

    @staticmethod
    def iterations(cfg):
        return cfg.training.iterations   # it starts at 0

    @classmethod
    def train(cls, run, level, secs):
        model, pruner = run.masked_copy(streams.init(run.cfg.seed), secs)
        return run.train(model, pruner, 0, level, cls.name)
