"""The analysis record and its registry (lth_fast.imp.analyses)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from ..registry import Registry


@dataclass(frozen=True)
class Analysis:
    """name: its lth-fast subcommand; help: one line; add_arguments(parser); run(args) ->
    exit status."""
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def add_run_dirs(p: argparse.ArgumentParser, what: str) -> None:
    """The RUN_DIR arguments of an analysis of several runs (seeds of one experiment)."""
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help=what)


ANALYSES: Registry[Analysis] = Registry("analysis")
