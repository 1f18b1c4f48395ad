"""`lth-fast imp`: argv -> IMPConfig (a preset plus overrides) -> run_imp -> the printed table."""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from ..pruning.rule import SCOPES, ConfigError
from .branches import BRANCHES
from .config import FLAT, OPTIMIZERS, REWINDS, SCHEDULES
from .criteria import CRITERIA
from .parallel import reports
from .presets import DEFAULT_PRESET, PRESETS, preset
from .report import format_table, summary_rows, time_share
from .same_experiment import check_against


# --stop-below without --levels: at most this many levels (0.8^30: 0.12% of the weights left)
STOP_BELOW_LEVELS = 30


def _csv(text: str) -> List[str]:
    return [] if text.strip().lower() in ("", "none") else [t.strip() for t in text.split(",")]


def _ints(text: str) -> List[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _rate_or_none(text: str) -> Optional[float]:
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate in [0, 1) or 'none', got {text!r}")


def _nm(text: str):
    try:
        n, m = (int(t) for t in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N:M such as 2:4, got {text!r}")
    return n, m


def _controls(text: str) -> List[str]:
    # the ticket (the one branch that is no control) may be named; it always runs
    items = [c for c in _csv(text) if c not in BRANCHES.names(control=False)]
    known = BRANCHES.names(control=True)
    bad = [c for c in items if c not in known]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown controls {bad}; known: {', '.join(known)}")
    return items


class _Unset:
    """The value of an override flag not given: None is a value one may give
    ("--output-rate none")."""

    def __repr__(self) -> str:
        return "unset"


UNSET = _Unset()
# (flag, IMPConfig field, argparse keywords); UNSET means "keep the preset's value"
_OVERRIDES = [
    ("--model", "model", dict(help="network (lenet_300_100, conv2/4/6, resnet20, vgg16; gpt "
                                   "for the text datasets)")),
    ("--dataset", "dataset", dict(help="mnist5k (embedded), mnist or cifar10 (--data-dir); "
                                       "pydoc (Python's own help texts) or text (--text-file)")),
    ("--text-file", "text_file", dict(help="a UTF-8 text for --dataset text (e.g. "
                                           "tiny-shakespeare's input.txt)")),
    ("--n-layer", "n_layer", dict(type=int, help="gpt: blocks")),
    ("--n-head", "n_head", dict(type=int, help="gpt: attention heads")),
    ("--n-embd", "n_embd", dict(type=int, help="gpt: width")),
    ("--block-size", "block_size", dict(type=int, help="gpt: context length (characters)")),
    ("--val-size", "val_size", dict(type=int, help="validation examples")),
    ("--test-size", "test_size", dict(type=int, help="test examples (mnist5k)")),
    ("--levels", "levels", dict(type=int, help="pruning levels after the dense level 0")),
    ("--iterations", "iterations", dict(type=int, help="training iterations per level")),
    ("--batch-size", "batch_size", dict(type=int)),
    ("--optimizer", "optimizer", dict(choices=OPTIMIZERS)),
    ("--lr", "lr", dict(type=float)),
    ("--momentum", "momentum", dict(type=float)),
    ("--weight-decay", "weight_decay", dict(type=float)),
    ("--warmup", "warmup", dict(type=int, help="iterations of linear LR warm-up")),
    ("--milestones", "milestones", dict(type=_ints, help="iterations of LR x gamma, e.g. 80,120")),
    ("--gamma", "gamma", dict(type=float)),
    ("--schedule", "schedule", dict(choices=SCHEDULES, help="step (milestones) or cosine")),
    ("--min-lr", "min_lr", dict(type=float, help="the cosine schedule's last learning rate")),
    ("--beta2", "beta2", dict(type=float, help="Adam/AdamW's second-moment decay")),
    ("--grad-clip", "grad_clip", dict(type=float, help="max global gradient norm")),
    ("--eval-every", "eval_every", dict(type=int, help="iterations between evaluations")),
    ("--scope", "scope", dict(choices=SCOPES, help="layer-wise or global magnitude ranking, or "
                                                   "nm: keep N of every M input weights (--nm; "
                                                   "one level)")),
    ("--rate", "rate", dict(type=float, help="fraction of surviving weights pruned per level")),
    ("--output-rate", "output_rate", dict(type=_rate_or_none,
                                          help="the output layer's rate, or 'none'")),
    ("--ignore", "ignore", dict(type=_csv, help="parameter names never pruned, comma-separated")),
    ("--rewind", "rewind", dict(choices=REWINDS, help="init, iteration (k) or lr rewinding, "
                                                      "or auto: k chosen by an instability "
                                                      "probe before level 1")),
    ("--rewind-candidates", "rewind_candidates", dict(type=_ints, help="--rewind auto: the "
                                                      "iterations k probed, e.g. 0,25,100,400")),
    ("--stable-below", "stable_below", dict(type=float, help="--rewind auto: stable below this "
                                            "test error barrier (0.02; a language model: this "
                                            "share of its endpoint loss)")),
    ("--rewind-iteration", "rewind_iteration", dict(type=int, help="k, for late rewinding")),
    ("--early-bird-window", "early_bird_window", dict(type=int, help="masks the early-bird "
                                                                     "monitor compares (5)")),
    ("--controls", "controls", dict(type=_controls, help=f"branches trained beside the ticket "
                                    f"at every pruned level: any of "
                                    f"{','.join(BRANCHES.names(control=True))} (or none; "
                                    f"naming ticket, which always runs, changes nothing); init: "
                                    f"the ticket's masks rewound to init")),
    ("--criterion", "criterion", dict(choices=list(CRITERIA), help="what ranks the weights "
                                                                   "(default magnitude)")),
    ("--pai-levels", "pai_levels", dict(type=_ints, help="the pruned levels the pruning-at-init "
                                                        "controls (snip, grasp, ...) train at, "
                                                        "e.g. 3,7,11,14 (default: every one)")),
    ("--pai-examples", "pai_examples", dict(type=int, help="what snip and grasp score on: "
                                                          "examples per class (a language "
                                                          "model: training batches; 10)")),
    ("--synflow-rounds", "synflow_rounds", dict(type=int, help="SynFlow's pruning rounds "
                                                              "(100)")),
    ("--synflow-float64", "synflow_float64", dict(action=argparse.BooleanOptionalAction,
                                                  help="score SynFlow in float64 (its products "
                                                       "of |w| underflow less)")),
    ("--data-seed", "data_seed", dict(type=int, help="seed of the data order and augmentation "
                                                     "(default: --seed)")),
    ("--keep-points", "keep_points", dict(type=_ints, help="iterations of level 0 whose weights "
                                                           "are kept in RUN_DIR/points/, e.g. "
                                                           "0,100,500")),
]
# the flag of each config field, for config errors (lth_fast.pruning.rule.ConfigError)
FLAGS = {".".join(FLAT[f]): flag for flag, f, _ in _OVERRIDES}
FLAGS.update({"data.data_dir": "--data-dir", "run.device": "--device", "run.seed": "--seed",
              "data.augment": "--augment", "pruning.early_bird": "--early-bird",
              "pruning.nm_n": "--nm N", "pruning.nm_m": "M"})


def config_error(e: ConfigError) -> str:
    """A config error in the command line's terms: its fields as flags."""
    return e.render(FLAGS)[len(e.prefix):] if e.prefix else e.render(FLAGS)


def add_imp(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS),
                   help=f"the experiment to start from (default {DEFAULT_PRESET}: LeNet-300-100 "
                        f"on the embedded MNIST digits, a few minutes on 2 CPU cores)")
    p.add_argument("--run-dir", help="where the artifacts go; a killed run restarted with the "
                                     "same command continues here (default runs/PRESET-sSEED)")
    p.add_argument("--data-dir", help="folder with MNIST IDX files or CIFAR-10 python batches")
    p.add_argument("--device", default=None, help="cpu (default), cuda, cuda:1, ...")
    p.add_argument("--seed", type=int, default=None, help="seed of the initialisation, data "
                                                          "order and controls (default 0)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crop + flip of CIFAR training images")
    for flag, field, kw in _OVERRIDES:
        p.add_argument(flag, dest=field, default=UNSET, **kw)
    p.add_argument("--nm", type=_nm, default=None, metavar="N:M",
                   help="with --scope nm: keep N of every M consecutive input weights (2:4)")
    p.add_argument("--early-bird", dest="early_bird", type=float, nargs="?", const=0.1,
                   default=None, metavar="EPS",
                   help="stop the dense training (level 0) once the masks level 1 would draw "
                        "have settled: the newest of the last 5 (--early-bird-window) within "
                        "normalized Hamming distance EPS (default 0.1) of each older one")
    p.add_argument("--stop-below", type=float, default=None, metavar="DELTA",
                   help="stop after the first level whose ticket's test accuracy at early stop "
                        "is more than DELTA points below the dense network's (a language "
                        "model: its loss more than DELTA%% above); with --seeds, the means. "
                        f"Without --levels it runs up to {STOP_BELOW_LEVELS} levels")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="run N seeds (--seed, --seed + 1, ...) level by level together, in "
                        "RUN_DIR-sSEED; the summary is their mean ± std")
    p.add_argument("--against", metavar="RUN_DIR",
                   help="compare each level's ticket with that run's (e.g. an --early-bird run "
                        "against the same experiment trained in full): results, early-stop "
                        "iterations and mask distance")
    p.add_argument("--fsdp", action="store_true",
                   help="under torchrun: shard the model with FSDP2 (fully_shard) instead of "
                        "replicating it with DDP")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write each level's scalars (density, early-stop metrics and "
                        "iteration, per-layer density) to TensorBoard in DIR, with the density "
                        "as the x-axis (pip install 'lth_fast[tensorboard]')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="start the run directory afresh (what it holds is removed once the "
                        "experiment has started: the data loads, the device exists)")


def flags_not_applying(args: argparse.Namespace, cfg) -> Optional[str]:
    """Why a flag given on the command line does not apply to the experiment, when its value
    alone cannot tell (the config refuses a value that differs from the default)."""
    scope = cfg.pruning.scope
    if args.nm is not None and scope != "nm":
        return f"--nm applies to --scope nm, not --scope {scope}"
    for flag, given in (("--rate", args.rate), ("--output-rate", args.output_rate)):
        if given is not UNSET and scope == "nm":
            return f"{flag} applies to the ranking scopes (layer, global); --scope nm keeps " \
                   f"{cfg.pruning.nm_n} of every {cfg.pruning.nm_m} by its own rule"
    return None


class UsageError(Exception):
    """A flag or setting that cannot run: one line, status 2."""


def _refuse(message: str) -> int:
    """A usage or config error: one line on stderr (under torchrun, by rank 0 alone), 2."""
    if reports():
        print(f"lth-fast imp: {message}", file=sys.stderr)
    return 2


def checked_config(args: argparse.Namespace):
    """The experiment the flags describe, checked before anything loads or trains; a
    UsageError or ConfigError says what does not go."""
    fields = ["data_dir", "device", "seed", "augment", "early_bird"] + \
        [f for _, f, _ in _OVERRIDES]
    overrides = {f: getattr(args, f) for f in fields if getattr(args, f) not in (None, UNSET)}
    if args.output_rate is None:  # "--output-rate none": the classifier at the common rate
        overrides["output_rate"] = None
    if args.nm is not None:
        overrides.update(nm_n=args.nm[0], nm_m=args.nm[1])
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    if args.stop_below is not None:
        if not args.stop_below >= 0:
            raise UsageError(f"--stop-below must be >= 0 (points below dense), got "
                             f"{args.stop_below}")
        if overrides.get("scope", PRESETS[args.preset].get("scope")) == "nm":
            raise UsageError("--stop-below stops IMP between levels; --scope nm reaches its "
                             "pattern in one level")
        if "levels" not in overrides:  # the rule ends the run, not a count
            overrides["levels"] = STOP_BELOW_LEVELS
    try:
        cfg = preset(args.preset, **overrides)
    except ConfigError:
        raise
    except ValueError as e:
        raise UsageError(str(e)) from None
    unused = flags_not_applying(args, cfg)
    if unused:
        raise UsageError(unused)
    if args.fsdp and int(os.environ.get("WORLD_SIZE", "1")) < 2:
        raise UsageError("--fsdp shards the model over the ranks torchrun starts; run it under "
                         "torchrun --nproc-per-node N (N >= 2)")
    if args.seeds > 1 and (args.fsdp or args.tensorboard):
        raise UsageError("--seeds runs in one process; give --fsdp and --tensorboard to "
                         "single-seed runs")
    if args.against is not None:
        if not os.path.isdir(args.against):
            raise UsageError(f"--against {args.against}: no such run directory")
        try:  # before any training: the same experiment, or nothing to compare
            check_against(cfg, args.against)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return cfg


def run_imp_command(args: argparse.Namespace) -> int:
    from .driver import run_imp
    from .lockstep import run_lockstep

    try:
        cfg = checked_config(args)
        seeds = [cfg.seed + i for i in range(args.seeds)]
        if args.seeds == 1:
            dirs = [args.run_dir or os.path.join("runs", f"{args.preset}-s{cfg.seed}")]
            runs = [run_imp(cfg, dirs[0], progress=not args.no_progress,
                            overwrite=args.overwrite, fsdp=args.fsdp,
                            tensorboard=args.tensorboard, stop_below=args.stop_below)]
        else:
            prefix = args.run_dir or os.path.join("runs", args.preset)
            dirs = [f"{prefix}-s{s}" for s in seeds]
            runs = run_lockstep([(cfg.replace(seed=s), d) for s, d in zip(seeds, dirs)],
                                stop_below=args.stop_below, progress=not args.no_progress,
                                overwrite=args.overwrite)
    except UsageError as e:
        return _refuse(str(e))
    except ConfigError as e:  # from the flags, or found once the model is built (--ignore)
        return _refuse(config_error(e))
    except ModuleNotFoundError as e:  # an optional package the asked-for output needs
        if e.name not in ("tensorboard", "mlxtend"):
            raise
        return _refuse(str(e))
    if not reports():  # under torchrun rank 0 reports
        return 0
    print_summary(runs, dirs, args.stop_below, args.against)
    return 0


def print_summary(runs: List[List[dict]], dirs: List[str], stop_below: Optional[float],
                  against: Optional[str]) -> None:
    """The table (one run) or the seeds' mean ± std, the sparsest matching tickets, the time
    spent pruning, and what early-bird saved and how its tickets compare."""
    from .early_bird_report import compare, early_bird_lines
    from .matching import describe, first_below, level_results
    from .analyses.seeds import combine, format_markdown
    from .rewind_probe import probe_lines

    rows = [summary_rows(m) for m in runs]
    print(format_table(rows[0]) if len(runs) == 1 else format_markdown(combine(dirs)))
    results = level_results(rows, runs[0][0].get("test_examples") if runs[0] else None)
    delta = 1.0 if stop_below is None else stop_below
    print()
    if stop_below is not None:
        low = first_below(results, stop_below)
        print(f"--stop-below {stop_below:g}: " + (
            "every level run matched; IMP ran all its levels" if low is None else
            f"level {low.level} ({low.remaining:.1f}% left) fell more than {stop_below:g} "
            f"below dense, and IMP stopped there"))
    for line in describe(results, delta) + early_bird_lines(runs[0]):
        print(line)
    for d, run in zip(dirs, runs):   # --rewind auto: each run's probe and its choice
        if len(run) > 1 and "rewind_probe" in run[1]:
            print(f"\n{d}:" if len(runs) > 1 else "")
            for line in probe_lines(run[1]["rewind_probe"]):
                print(line)
    t = time_share([m for run in runs for m in run])
    print(f"\npruning {t['prune']:.2f} s + rewinding {t['rewind']:.2f} s = "
          f"{100 * t['share']:.2f}% of {t['level']:.1f} s of IMP (training {t['train']:.1f} s, "
          f"evaluation {t['eval']:.1f} s; masking is fused into the optimizer step)")
    if against is not None:
        print(f"\neach level's ticket against {against}'s:")
        print(compare(dirs[0], against))
    print(f"artifacts: {', '.join(d + '/' for d in dirs)} (summary.csv, imp.png, layers.png, "
          f"level_*/)")
