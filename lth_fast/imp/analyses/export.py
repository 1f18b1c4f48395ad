"""The `export` analysis: one finished level of an IMP run directory as one compact,
self-contained file (lth_fast.shipping.format): the masks at 1 bit per weight, only the kept
weights, the never-pruned tensors, and the architecture, so the ticket loads without its run
directory or its data set (lth_fast.load_exported).

    lth-fast export RUN_DIR --level L [--dtype float16] [--out PATH]
    from lth_fast.imp import export_run

Its file goes beside the level it exports (RUN_DIR/level_LL/exported-DTYPE.safetensors) unless
--out names another."""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Optional

from ... import atomic
from ..._version import __version__
from ...shipping.architecture import architecture_of, build, saved_names, tied_aliases
from ...shipping.format import DTYPES, encode, name_diff
from ..run_dir import CHECKPOINT, RunDir, RunFileError
from .base import ANALYSES, Analysis


class ExportUsageError(ValueError):
    """A wrong argument (run directory, level, dtype, output path): status 2 at the CLI."""


def default_out(run_dir, level: int, dtype: str) -> str:
    return RunDir(run_dir).file(RunDir.level_rel(level, f"exported-{dtype}.safetensors"))


def export_run(run_dir, level: int, dtype: str = "float32", out: Optional[str] = None,
               log=None) -> dict:
    """Writes level `level` of the IMP run in `run_dir` to `out` (default
    RUN_DIR/level_LL/exported-DTYPE.safetensors), atomically. Returns what was written: path,
    bytes, level, density, kept and total pruned weights, dtype."""
    _check_args(run_dir, level, dtype, out)
    files = RunDir(run_dir)
    cfg = files.read_config()
    if cfg is None:
        raise ExportUsageError(f"{run_dir} is not an lth-fast imp run directory (it has no "
                               f"config.json)")
    # each finished level's files are checked; a stale one (computed from files changed since)
    # ends the list, as it does for a restarted run, and a damaged one below `level` means
    # `level` is not a finished level of this run either
    try:
        done = files.finished_levels(log=lambda _: None)
    except RunFileError as e:
        bad = int(re.search(r"level_(\d+)", str(e)).group(1)) if re.search(
            r"level_(\d+)", str(e)) else 0
        if bad >= level:
            raise
        raise RunFileError(f"--level {level}: level {level} of {run_dir} is not finished as "
                           f"its run left it, since level {bad} below it is damaged: "
                           f"{e}") from None
    if level >= len(done):
        have = f"levels 0..{len(done) - 1} are" if done else "no level is"
        raise ExportUsageError(f"--level {level}: level {level} of {run_dir} is not finished "
                               f"({have})")
    saved = files.load_masks(level)
    rel = RunDir.level_rel(level, CHECKPOINT)
    state = files.load_state(rel, level, "cpu")
    where = files.shown(rel)
    try:
        arch = architecture_of(cfg.model.name, cfg.data.dataset, vars(cfg.model), state)
        model = build(arch)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{where}: cannot rebuild {cfg.model.name} from it ({e})") from None
    _check_checkpoint(where, model, state, saved)
    params = {n for n, _ in model.named_parameters()}
    dt = DTYPES[dtype]
    masks = {n: saved.masks[n] for n in saved.names}
    dense = {k: (v.to(dt) if k in params and v.is_floating_point() else v)
             for k, v in state.items() if k not in masks}
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    info = {"level": level, "density": repr(kept / total if total else 1.0),
            "dataset": cfg.data.dataset}
    tensors, meta = encode(arch, dtype, masks, state, dense, info, __version__)
    path = out if out is not None else default_out(run_dir, level, dtype)
    atomic.save_tensors(path, tensors, meta, checksum=True)
    if log is not None:
        log(f"{path}: level {level}, {100 * kept / max(total, 1):.2f}% of the pruned weights "
            f"kept, {dtype}, {os.path.getsize(path):,} bytes")
    return {"path": path, "bytes": os.path.getsize(path), "level": level,
            "density": kept / total if total else 1.0, "kept": kept, "total": total,
            "dtype": dtype}


def _check_args(run_dir, level, dtype: str, out: Optional[str]) -> None:
    if dtype not in DTYPES:
        raise ExportUsageError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise ExportUsageError(f"--level must be an integer >= 0, got {level!r}")
    if not os.path.isdir(run_dir):
        raise ExportUsageError(f"{run_dir}: no such run directory")
    if out is not None:
        parent = os.path.dirname(os.path.abspath(out))
        if os.path.isdir(out):
            raise ExportUsageError(f"--out {out} is a directory; give a file name")
        if not os.path.isdir(parent):
            raise ExportUsageError(f"--out {out}: directory {parent} does not exist")


def _check_checkpoint(where: str, model, state, saved) -> None:
    """The checkpoint is the model's state (a tied parameter once), its masks name weights of
    it with their shapes, and every pruned entry is exactly 0: only then does dropping the
    pruned entries lose nothing."""
    names = set(saved_names(model))
    if set(state) != names:
        raise ValueError(f"{where} does not fit the model: {name_diff(names, set(state))}")
    full = dict(state)
    for alias, first in tied_aliases(model).items():
        full[alias] = full[first]
    try:
        model.load_state_dict(full, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{where} does not fit the model "
                         f"({str(e).strip().splitlines()[-1].strip()})") from None
    for n in saved.names:
        if n not in state or tuple(state[n].shape) != tuple(saved.masks[n].shape):
            raise ValueError(f"{where}: the masks' {n} is not a tensor of this shape in it")
        if state[n][~saved.masks[n]].any():
            raise ValueError(f"{where}: {n} has non-zero pruned entries (the checkpoint is not "
                             f"the ticket of its masks)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="the directory of an lth-fast imp run")
    p.add_argument("--level", type=int, required=True,
                   help="the finished level whose ticket (trained weights and masks) to export")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES),
                   help="dtype of the kept weights and the other floating parameters "
                        "(default float32: loads back bit for bit)")
    p.add_argument("--out", help="the file to write (default RUN_DIR/level_LL/"
                                 "exported-DTYPE.safetensors); its directory must exist")


def run(args: argparse.Namespace) -> int:
    try:
        export_run(args.run_dir, args.level, args.dtype, args.out, log=print)
    except ExportUsageError as e:  # a wrong argument: one line, status 2 (as a bad flag)
        print(f"lth-fast export: {e}", file=sys.stderr)
        return 2
    return 0


ANALYSES.register(Analysis(
    "export", help="write one finished level of an imp run as one compact safetensors file "
                   "(masks at 1 bit per weight, only the kept weights), loadable with "
                   "lth_fast.load_exported",
    add_arguments=add_arguments, run=run))
