"""ticket: the level's masks from the run's own lineage. The level step (lth_fast.pruning.level)
prunes the previous level's trained ticket by the run's criterion and rule, rewinds it (to
iteration 0 or k; with rewind "lr" it keeps the trained weights and replays the learning-rate
schedule from k), and it trains from the rewind iteration."""
from __future__ import annotations

from .base import BRANCHES, Branch


def train(run, level, secs):
    run.step_level(level, secs)
    return run.train(run.model, run.pruner, run.cfg.pruning.rewind_iteration, level, "ticket")


BRANCHES.register(Branch("ticket", tag=0, label="winning ticket", short="ticket", train=train,
                         style=("C0", "-", "o"), control=False))
