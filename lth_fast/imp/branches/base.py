"""The branch record and its registry (lth_fast.imp.branches)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

from ..registry import Registry


def after_rewind(cfg) -> int:
    """What a branch trains per pruned level when it starts at the rewind iteration."""
    return cfg.training.iterations - cfg.pruning.rewind_iteration


def applies(pruning) -> None:
    """A branch that applies to every run's settings."""


def every_level(cfg, level: int) -> bool:
    """A branch that trains at every pruned level."""
    return True


@dataclass(frozen=True)
class Branch:
    """name; tag: its own stream, lth_fast.imp.streams.branch(seed, tag, level); label: in
    plots and tables; train(run, level, secs) -> RunResult; style: matplotlib color, line
    style and marker; control: False for the ticket; check(pruning): raises ConfigError
    (lth_fast.pruning.rule.need) where it does not apply; iterations(cfg): what it trains per
    pruned level (the progress bar); short: its name in tables over seeds (default: label);
    runs_at(cfg, level): whether it trains at that pruned level (a level it skips has no
    result for it); criterion: for a pruning-at-init branch, the criterion whose masks it
    trains (lth_fast.imp.branches.pai)."""
    name: str
    tag: int
    label: str
    train: Callable[..., object]
    style: Tuple[str, str, str] = ("k", "-", "o")
    control: bool = True
    check: Callable[[object], None] = applies
    iterations: Callable[[object], int] = after_rewind
    short: str = ""
    runs_at: Callable[[object, int], bool] = every_level
    criterion: str = ""

    def __post_init__(self) -> None:
        if not self.short:
            object.__setattr__(self, "short", self.label)


BRANCHES: Registry[Branch] = Registry("branch", unique=("tag",))
