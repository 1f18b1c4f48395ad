"""The `lth-fast` command (also `python -m lth_fast`). Each subcommand is an entry in
COMMANDS: its help line, a function that adds its arguments to a subparser, and a function that
runs it from the parsed namespace and returns the exit status. New subcommands (imp, ...) add
one more entry; each imports what it needs inside its run function."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Dict, List, Optional, Tuple

from .bench.cli import add_bench, run_bench
from .imp.cli import add_imp, run_imp_command


COMMANDS: Dict[str, Tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int]]] = {
    "bench": ("time the kernels against the pure-PyTorch reference, torch.nn.utils.prune "
              "and the machine's bandwidth floor", add_bench, run_bench),
    "imp": ("find winning tickets by iterative magnitude pruning, with the random-reinit and "
            "random-pruning controls; prints the table, writes the plot", add_imp,
            run_imp_command),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lth-fast", description="Lottery tickets, fast.")
    from ._version import __version__
    parser.add_argument("--version", action="version", version=f"lth_fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (help_text, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        p.set_defaults(_run=run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return args._run(args)


if __name__ == "__main__":
    sys.exit(main())
