"""The analysis interface and its registry (lth_fast.imp.analyses)."""
from __future__ import annotations

import argparse

from ..registry import Registry


class Analysis:
    name = ""
    help = ""   # one line: the command's help and description

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        """Runs it from the parsed arguments; returns the exit status."""
        raise NotImplementedError


ANALYSES: Registry[Analysis] = Registry("analysis")
