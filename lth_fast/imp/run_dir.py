"""The files of an IMP run directory, and reading them back checked.

Every file a restart reads is validated before it is used, and a bad one raises RunFileError,
which names the file and says what to do. Each level's metrics.json (written last, so its
presence marks the level finished) records a checksum of the files the level wrote (its masks
and checkpoint; level 0 also the rewind point) and of the files it was computed from (the
rewind point and the previous level's masks and checkpoint). So a truncated or replaced file of
any earlier level is found on resume, and a level computed from files that have since changed
(its parent was deleted and retrained to other values) is recognised as stale and trained again.
The checksum is SHA-256 over a safetensors file's metadata and tensors, not its bytes:
safetensors writes the metadata in no fixed order, so equal files can differ byte for byte.

The layout (lth_fast.imp.driver writes the levels, lth_fast.imp.level_record each level's files):

    run_dir/config.json                 the IMPConfig (a restart must match it)
    run_dir/rewind_point.safetensors    the whole model at the rewind point (iteration 0 or k)
    run_dir/level_LL/masks.safetensors  the level's masks, bit-packed
                                        (lth_fast.pruning.ticket.load_masks)
    run_dir/level_LL/checkpoint.safetensors  the ticket's weights at the end of its training
    run_dir/level_LL/metrics.json       every branch's evaluations and timings, and the checksums
                                        of the level's files; written last, so its presence
                                        marks the level finished
    run_dir/summary.csv, run_dir/imp.png   the table and plot (lth_fast.imp.report)
    run_dir/layers.png                  the weights left in each pruned tensor, per level
    run_dir/points/iteration_KKKKKK.safetensors   the whole model at iteration K of level 0,
                                        for each K of run.keep_points (level 0's metrics.json
                                        lists them under "points" and checks them)
    run_dir/rewind_probe/               --rewind auto: the probe's children and choice
                                        (lth_fast.imp.rewind_probe)
    run_dir/analyses/NAME/              what analysis NAME (lth_fast.imp.analyses) wrote about
                                        the run: derived, never read back by the run

summary.csv and imp.png are derived from the level files and rewritten at the end of every run;
nothing reads them back."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
from typing import Callable, Dict, List, Optional, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from .. import atomic
from ..atomic import content_sha256
from ..pruning import ticket
from ..pruning.mask_set import MaskSet
from .config import IMPConfig
from .report import summary_rows

CONFIG, REWIND_POINT, SUMMARY, PLOT = ("config.json", "rewind_point.safetensors", "summary.csv",
                                       "imp.png")
LAYER_PLOT = "layers.png"
MASKS, CHECKPOINT, METRICS = "masks.safetensors", "checkpoint.safetensors", "metrics.json"
LEVEL_DIR = re.compile(r"level_\d{2,}$")


class RunFileError(ValueError):
    """A file of a run directory that cannot be used; the message names it and what to do."""


def checksum(path) -> str:
    """lth_fast.atomic.content_sha256 of a safetensors file: its sorted metadata and each
    tensor (name, dtype, shape, bytes) in name order. Raises what safetensors raises for a
    truncated or foreign file."""
    with safe_open(os.fspath(path), framework="pt") as f:
        return content_sha256({name: f.get_tensor(name) for name in f.keys()},
                              f.metadata() or {})


class RunDir:
    """Paths and checked reads of one run directory. `rel` names are relative to it, with '/'
    (as they appear in messages and in metrics.json)."""

    def __init__(self, path) -> None:
        self.path = os.fspath(path)
        self._sums: Dict[str, str] = {}  # rel -> checksum(), computed once per run

    def file(self, rel: str) -> str:
        return os.path.join(self.path, *rel.split("/"))

    def shown(self, rel: str) -> str:
        return os.path.join(self.path, rel)

    @staticmethod
    def point_rel(iteration: int) -> str:
        """The kept weights of level 0 at `iteration` (run.keep_points)."""
        return f"points/iteration_{iteration:06d}.safetensors"

    def analysis_dir(self, name: str) -> str:
        """The folder of analysis `name`'s output, made if missing."""
        path = self.file(f"analyses/{name}")
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def level_rel(level: int, name: str = "") -> str:
        return f"level_{level:02d}/{name}" if name else f"level_{level:02d}/"

    def redo(self, level: int) -> str:
        """What to do about a bad file of `level` (level 0 also takes the rewind point again)."""
        return (f"delete {self.shown(self.level_rel(level))} to train level {level} again "
                f"(the levels after it are retrained too)")

    def check_folders(self) -> None:
        """The run directory, and every folder a run writes in it, is a folder where it exists:
        checked before anything loads or trains, so a file in the way is one line naming it."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise RunFileError(f"run directory {self.path} is a file: give another path, or "
                               f"move the file away")
        if not os.path.isdir(self.path):
            return
        for name in sorted(os.listdir(self.path)):
            full = os.path.join(self.path, name)
            if (LEVEL_DIR.match(name) or name in ("points", "analyses", "rewind_probe")) and \
                    not os.path.isdir(full):
                raise RunFileError(f"{full} is a file where the run keeps a folder: move it "
                                   f"away")

    # -- config.json -------------------------------------------------------------------------
    def read_config(self) -> Optional[IMPConfig]:
        """The experiment recorded here, or None in a new directory."""
        path = self.file(CONFIG)
        if not os.path.exists(path):
            return None
        fix = "restore it, or start afresh with --overwrite"
        data = self._json(CONFIG, fix)
        try:
            return IMPConfig.from_dict(data)
        except (TypeError, ValueError) as e:
            raise RunFileError(f"{self.shown(CONFIG)} is not an IMP config ({e}): {fix}") from None

    def write_config(self, cfg: IMPConfig) -> None:
        atomic.write_json(self.file(CONFIG), cfg.to_dict())

    def _json(self, rel: str, fix: str):
        try:
            with open(self.file(rel), encoding="utf-8") as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as e:
            raise RunFileError(f"{self.shown(rel)} is truncated or not JSON ({e}): {fix}") from None
        except OSError as e:
            raise RunFileError(f"{self.shown(rel)} cannot be read ({e.strerror}): {fix}") from None
        if not isinstance(data, dict):
            raise RunFileError(f"{self.shown(rel)} holds a {type(data).__name__}, not an object: "
                               f"{fix}")
        return data

    # -- finished levels ---------------------------------------------------------------------
    def finished_levels(self, log: Callable[[str], None] = print) -> List[dict]:
        """The metrics of levels 0, 1, ... that are finished and check out, in order, up to the
        first level that is missing or stale. A corrupt file raises RunFileError."""
        out: List[dict] = []
        level = 0
        while os.path.exists(self.file(self.level_rel(level, METRICS))):
            metrics = self._level_metrics(level)
            stale = self._verify(level, metrics)
            if stale:
                log(f"{self.shown(self.level_rel(level))} was computed from another "
                    f"{stale}; training level {level} again")
                return out
            out.append(metrics)
            level += 1
        # a level whose files are all there but its record (metrics.json, written last) was
        # lost: retraining it would overwrite what may be a good level without a word
        if all(os.path.exists(self.file(self.level_rel(level, name)))
               for name in (MASKS, CHECKPOINT)):
            raise RunFileError(f"{self.shown(self.level_rel(level, METRICS))} is missing, but "
                               f"the level's masks and checkpoint are there: restore it, or "
                               f"{self.redo(level)}")
        return out

    def _level_metrics(self, level: int) -> dict:
        rel = self.level_rel(level, METRICS)
        m = self._json(rel, self.redo(level))
        try:
            ok = m["level"] == level and "ticket" in m["branches"]
            summary_rows([m])
        except (KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise RunFileError(f"{self.shown(rel)} is not level {level}'s metrics: "
                               f"{self.redo(level)}")
        return m

    def _verify(self, level: int, metrics: dict) -> Optional[str]:
        """Checks the files a finished level records; returns the input file that has changed
        since (the level is stale), raises on a bad file of its own, else None."""
        files = metrics.get("files")
        own = {self.level_rel(level, MASKS), self.level_rel(level, CHECKPOINT)}
        if level == 0:
            own |= {REWIND_POINT, *(self.point_rel(k) for k in metrics.get("points", ()))}
        if files is None:  # written before checksums were recorded: check that they load
            for rel in sorted(own):
                self.checksum(rel, level)
            return None
        if not isinstance(files, dict) or not own <= set(files):
            raise RunFileError(f"{self.shown(self.level_rel(level, METRICS))} does not list the "
                               f"level's files: {self.redo(level)}")
        for rel, want in sorted(files.items(), key=lambda kv: kv[0] not in own):
            if rel not in own and not os.path.exists(self.file(rel)):
                return rel
            if self.checksum(rel, level) == want:
                continue
            if rel in own:
                raise RunFileError(f"{self.shown(rel)} does not match the checksum in "
                                   f"{self.level_rel(level, METRICS)} (changed since): "
                                   f"{self.redo(level)}")
            return rel
        return None

    def checksum(self, rel: str, level: int) -> str:
        """checksum() of a file of `level`, computed once per run; a missing or unreadable
        file raises RunFileError."""
        if rel not in self._sums:
            if not os.path.exists(self.file(rel)):
                raise RunFileError(f"{self.shown(rel)} is missing: {self.redo(level)}")
            try:
                self._sums[rel] = checksum(self.file(rel))
            except Exception as e:  # safetensors raises its own error types, and OSError
                raise RunFileError(f"{self.shown(rel)} is truncated or not a safetensors file "
                                   f"({_first_line(e)}): {self.redo(level)}") from None
        return self._sums[rel]

    def level_files(self, level: int, points: Sequence[str] = (),
                    rewind: str = REWIND_POINT) -> Dict[str, str]:
        """{rel: checksum} of what a just-written level wrote (level 0: also the kept
        `points`) and was computed from; `rewind`: the rewind point it read (--rewind auto:
        a kept point of level 0)."""
        wrote = [self.level_rel(level, MASKS), self.level_rel(level, CHECKPOINT), *points]
        read = [rewind]
        if level > 0:
            read += [self.level_rel(level - 1, MASKS), self.level_rel(level - 1, CHECKPOINT)]
        else:
            wrote.append(REWIND_POINT)
        for rel in wrote:
            self._sums.pop(rel, None)  # just (re)written
        return {rel: self.checksum(rel, level) for rel in read + wrote}

    # -- tensors -----------------------------------------------------------------------------
    def load_state(self, rel: str, level: int, device) -> Dict[str, torch.Tensor]:
        try:
            state = load_file(self.file(rel))
        except Exception as e:
            raise RunFileError(f"{self.shown(rel)} cannot be loaded ({_first_line(e)}): "
                               f"{self.redo(level)}") from None
        return {k: v.to(device) for k, v in state.items()}

    def load_masks(self, level: int) -> MaskSet:
        rel = self.level_rel(level, MASKS)
        try:
            return ticket.load_masks(self.file(rel))
        except Exception as e:
            raise RunFileError(f"{self.shown(rel)} cannot be loaded ({_first_line(e)}): "
                               f"{self.redo(level)}") from None

    # -- starting afresh ---------------------------------------------------------------------
    def clear(self) -> None:
        """Removes what a run writes here (level folders from the last, then the other files);
        anything else in the directory is left alone."""
        if not os.path.isdir(self.path):
            return
        levels = sorted((d for d in os.listdir(self.path) if LEVEL_DIR.match(d)), reverse=True)
        for d in levels:
            shutil.rmtree(os.path.join(self.path, d))
        for name in (SUMMARY, PLOT, LAYER_PLOT, REWIND_POINT, CONFIG):
            if os.path.exists(self.file(name)):
                os.remove(self.file(name))
        for folder in ("points", "analyses", "rewind_probe"):
            if os.path.isdir(self.file(folder)):
                shutil.rmtree(self.file(folder))
        self._sums.clear()


def read_summary(run_dir) -> List[Dict[str, float]]:
    path = os.path.join(os.fspath(run_dir), SUMMARY)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e}); give run directories "
                         f"of finished lth-fast imp runs") from None
    if not rows:
        raise ValueError(f"{path} holds no level")
    return [{k: (float(v) if v not in ("", None) else None) for k, v in r.items()} for r in rows]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
