"""`lth-fast export RUN_DIR --level L [--dtype ...] [--out PATH]`: one finished level of an IMP
run as one compact safetensors file (lth_fast.shipping.format), loadable with
lth_fast.load_exported."""
from __future__ import annotations

import argparse
import sys

from .format import DTYPES


def add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="the directory of an lth-fast imp run")
    p.add_argument("--level", type=int, required=True,
                   help="the finished level whose ticket (trained weights and masks) to export")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES),
                   help="dtype of the kept weights and the other floating parameters "
                        "(default float32: loads back bit for bit)")
    p.add_argument("--out", help="the file to write (default RUN_DIR/level_LL/"
                                 "exported-DTYPE.safetensors); its directory must exist")


def run_export(args: argparse.Namespace) -> int:
    from .export import ExportUsageError, export_run

    try:
        export_run(args.run_dir, args.level, args.dtype, args.out, log=print)
    except ExportUsageError as e:  # a wrong argument: one line, status 2 (as a bad flag)
        print(f"lth-fast export: {e}", file=sys.stderr)
        return 2
    return 0
