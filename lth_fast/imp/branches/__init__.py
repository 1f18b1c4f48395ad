"""Branches: what trains from a pruned level's masks and reports its metrics. The ticket is a
branch (it runs first and carries the run on to the next level); the controls (reinit, random,
init) are branches too, each a small file registered in BRANCHES. `pruning.controls` names the
branches a run trains beside the ticket, in that order.

A branch is a Branch record (base.py): its `name`, a `tag` (its own random stream,
lth_fast.imp.streams.branch), a `label` (plots and tables) and `train(run, level, secs) ->
RunResult`, where `run` is the IMPRun (lth_fast.imp.driver lists what a branch may use of it);
optionally a `style`, `check(pruning)` (a ConfigError where it does not apply to a run's
pruning settings), `iterations(cfg)` (what it trains per level, for the progress bar) and
`runs_at(cfg, level)` (the pruned levels it trains at)."""
from __future__ import annotations

from .base import BRANCHES, Branch
# each registers itself, in table order; pai: pruning at initialisation and its two ablations
from . import ticket, init, reinit, random, pai  # noqa: F401

__all__ = ["BRANCHES", "Branch"]
