"""Runs are combined only when they are one experiment. `lth-fast ticket` and `lth-fast seeds`
average run directories as seeds, and `lth-fast imp --against` compares a run with another: each
checks first, before any training or output, that the configs agree on everything that is not
a seed (or, for --against, not what the comparison is about), and refuses a directory given
twice or a seed that repeats. The refusal is one line naming the first field that differs."""
from __future__ import annotations

import os
from typing import List, Sequence, Tuple

from .branches import BRANCHES
from .config import IMPConfig
from .run_dir import RunDir

# what seeds of one experiment may differ in; the corpus's Python is recorded, its checksum
# compared
SEED_FIELDS = ("run.seed", "data.data_seed", "data.text_python", "run.device",
               "run.keep_points", "pruning.levels")
# what an --against run may differ in: how level 0 stopped (early-bird), and how far it went;
# its seeds are the same, so that its masks are comparable
AGAINST_FIELDS = ("data.text_python", "run.device", "run.keep_points", "pruning.levels",
                  "pruning.early_bird", "pruning.early_bird_window")


def same_branches(old: IMPConfig, new: IMPConfig) -> bool:
    """Whether every branch trains at the same levels under both configs, among the levels the
    old one had (so its finished levels are what the new one would have made)."""
    return old.pruning.controls == new.pruning.controls and all(
        BRANCHES[b].runs_at(old, level) == BRANCHES[b].runs_at(new, level)
        for b in old.pruning.controls for level in range(1, old.pruning.levels + 1))


def read_config(run_dir) -> IMPConfig:
    """The config of a finished run directory, or a one-line error."""
    cfg = RunDir(run_dir).read_config()
    if cfg is None:
        raise ValueError(f"{run_dir} is not an lth-fast imp run directory (it has no "
                         f"config.json)")
    return cfg


def first_difference(a: IMPConfig, b: IMPConfig, allowed: Sequence[str]) -> str:
    """The first 'field: a != b' line outside `allowed`, or ''."""
    for line in a.differences(b):
        if line.split(":", 1)[0] not in allowed:
            return line
    return ""


def check_seeds(run_dirs: Sequence) -> List[IMPConfig]:
    """The configs of run directories that are seeds of one experiment; a directory given
    twice, a repeated seed, or a field that differs (but the seeds) is a one-line error."""
    if not run_dirs:
        raise ValueError("give at least one run directory")
    seen = {}
    for d in run_dirs:
        real = os.path.realpath(os.fspath(d))
        if real in seen:
            raise ValueError(f"{d} is given twice (as {seen[real]} too): each run directory "
                             f"is one seed")
        seen[real] = d
    configs = [read_config(d) for d in run_dirs]
    seeds: dict = {}
    for d, cfg in zip(run_dirs, configs):
        diff = first_difference(configs[0], cfg, SEED_FIELDS)
        if diff:
            raise ValueError(f"{run_dirs[0]} and {d} are not seeds of one experiment "
                             f"({diff}); combine runs that differ only in their seeds")
        key: Tuple[int, int] = (cfg.seed, cfg.data_seed)
        if key in seeds:
            raise ValueError(f"{seeds[key]} and {d} have the same seed (run.seed {key[0]}, "
                             f"data seed {key[1]}): they are one seed, not two")
        seeds[key] = d
    return configs


def check_against(cfg: IMPConfig, against) -> IMPConfig:
    """The config of the run `against` that a run of `cfg` is compared with, checked: the same
    experiment but for its seeds' fields and early-bird; else a one-line error."""
    other = read_config(against)
    # a text run records its corpus's checksum once it has read it: compare it then, not now
    unread = ("data.text_sha256",) if cfg.data.text_sha256 is None else ()
    diff = first_difference(other, cfg, AGAINST_FIELDS + unread)
    if diff:
        raise ValueError(f"--against {against} is another experiment ({diff}); compare a run "
                         f"with the same experiment and seeds, trained without early-bird")
    return other


__all__ = ["check_against", "check_seeds", "first_difference", "read_config", "same_branches"]
