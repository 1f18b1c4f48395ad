"""The branch interface and its registry (lth_fast.imp.branches)."""
from __future__ import annotations

from typing import Dict

from ..registry import Registry


class Branch:
    name = ""
    tag = 0              # its stream: lth_fast.imp.streams.branch(seed, tag, level)
    label = ""           # in plots
    short = ""           # in tables over seeds
    style = ("k", "-", "o")   # in plots: matplotlib color, line style, marker
    control = True       # False for the ticket, which every pruned level trains

    @staticmethod
    def check(pruning) -> None:
        """Raises ConfigError (lth_fast.pruning.rule) if the branch does not apply."""

    @staticmethod
    def iterations(cfg) -> int:
        """The iterations it trains per pruned level (for the progress bar)."""
        return cfg.training.iterations - cfg.pruning.rewind_iteration

    @staticmethod
    def train(run, level: int, secs: Dict[str, float]):
        raise NotImplementedError


BRANCHES: Registry[Branch] = Registry("branch", unique=("tag",))
