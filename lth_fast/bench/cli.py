"""`lth-fast bench`: its arguments (add_bench) and its run (run_bench)."""
from __future__ import annotations

import argparse
import sys
from typing import List

from ..atomic import write_json
from .suite import OPS
from .workloads import parse_size


def _csv(text: str) -> List[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _sizes(text: str) -> List[str]:
    items = _csv(text)
    for s in items:
        try:
            parse_size(s)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return items


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def add_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=_sizes, default=["10M", "50M"], metavar="10M,50M",
                   help="parameter counts (K/M/G/B suffixes), comma-separated (default 10M,50M)")
    p.add_argument("--ops", type=_csv, default=list(OPS), metavar=",".join(OPS),
                   help="ops to measure, comma-separated (default all)")
    p.add_argument("--workloads", type=_csv, default=["resnet", "transformer"],
                   metavar="resnet,transformer",
                   help="model shapes: resnet, transformer (scaled to each size; the "
                        "default), lenet, resnet20 (the papers' models at their real size)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--reps", type=_positive, default=15,
                   help="repetitions of the fast op (default 15); slow baselines run "
                        "min(--slow-reps, --reps)")
    p.add_argument("--slow-reps", type=_positive, default=3,
                   help="repetitions of the reference and torch baselines (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before timing (default 1)")
    p.add_argument("--threads", type=_positive, default=None,
                   help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write every number (all times) to FILE, atomically")
    p.add_argument("--no-baselines", action="store_true",
                   help="time only the fast implementations")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the peak-memory probe (fresh subprocesses)")
    p.add_argument("--seed", type=int, default=0, help="workload seed (default 0)")
    p.add_argument("--ranks", type=_positive, default=None,
                   help="measure sharded prune_ instead: each size split over this many local "
                        "gloo processes (one thread each), against one thread on one shard")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run_bench(args: argparse.Namespace) -> int:
    import os

    from ..devices import check_device
    from . import report, runner, suite

    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        print(f"lth-fast bench: no directory for --json {args.json}", file=sys.stderr)
        return 2

    for op in args.ops:
        if op not in suite.OPS:
            print(f"lth-fast bench: unknown op {op!r}; choose from {sorted(suite.OPS)}",
                  file=sys.stderr)
            return 2
    check_device(args.device)  # a device error is one of running (status 1), not of flags
    if args.ranks is not None:
        return _run_sharded(args)
    opts = runner.Options(ops=args.ops, workloads=args.workloads, sizes=args.sizes,
                          device=args.device, reps=args.reps, slow_reps=args.slow_reps,
                          warmup=args.warmup, threads=args.threads,
                          baselines=not args.no_baselines, memory=not args.no_memory,
                          progress=not args.quiet, seed=args.seed)
    try:
        data = runner.run(opts)
    except ValueError as e:
        print(f"lth-fast bench: {e}", file=sys.stderr)
        return 2
    print(report.markdown(data))
    if args.json:
        write_json(args.json, data)
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


def _run_sharded(args: argparse.Namespace) -> int:
    from . import sharded
    if args.device != "cpu":
        print("lth-fast bench: --ranks runs gloo processes on the CPU; drop --device",
              file=sys.stderr)
        return 2
    if args.ranks < 2:
        print("lth-fast bench: --ranks needs at least 2 ranks", file=sys.stderr)
        return 2
    unknown = [w for w in args.workloads if w not in ("resnet", "transformer")]
    if unknown:
        print(f"lth-fast bench: --ranks shards the resnet and transformer workloads, not "
              f"{unknown[0]!r}", file=sys.stderr)
        return 2
    data = sharded.run(args.sizes, args.workloads, args.ranks, args.reps, args.warmup,
                       args.seed)
    print(sharded.markdown(data))
    if args.json:
        write_json(args.json, data)
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0
