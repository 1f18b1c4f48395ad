"""The `lth-fast` command (also `python -m lth_fast`). Each subcommand is an entry in
COMMANDS: its help line, a function that adds its arguments to a subparser, and a function that
runs it from the parsed namespace and returns the exit status. Every analysis of a finished run
(lth_fast.imp.analyses: ticket, seeds, export, ...) is a subcommand of its own name.

Every error is one line on stderr that names the file, flag or value at fault: status 2 for a
usage or config error, 1 for anything that fails while running (data, device, files).
`--debug` shows the traceback instead."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Dict, List, Optional, Tuple

from .bench.cli import add_bench, run_bench
from .imp.analyses import ANALYSES
from .imp.cli import add_imp, run_imp_command


COMMANDS: Dict[str, Tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int]]] = {
    "bench": ("time the kernels against the pure-PyTorch reference, torch.nn.utils.prune "
              "and the machine's bandwidth floor", add_bench, run_bench),
    "imp": ("find winning tickets by iterative magnitude pruning, with the random-reinit and "
            "random-pruning controls; prints the table, writes the plot", add_imp,
            run_imp_command),
    **{a.name: (a.help, a.add_arguments, a.run) for a in ANALYSES.values()},
}


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (status 2, as argparse has it)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    debug = OneLineParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error")
    parser = OneLineParser(prog="lth-fast", description="Lottery tickets, fast.",
                           parents=[debug])
    from ._version import __version__
    parser.add_argument("--version", action="version", version=f"lth_fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name, (help_text, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[debug])
        add(p)
        p.set_defaults(_run=run, _parser=p)
    return parser


def one_line(e: BaseException) -> str:
    """An error as one line: the message of the errors we raise (they name the file, flag or
    list entry), else the exception type too."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    if isinstance(e, (ValueError, TypeError, OSError)) and text:
        return text
    return f"{type(e).__name__}: {text or 'no message'} (--debug shows the traceback)"


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the subcommand, whose --help lists what it takes
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args._run(args)
    except KeyboardInterrupt:
        print(f"lth-fast {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if getattr(args, "debug", False):
            raise
        print(f"lth-fast {args.command}: {one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
