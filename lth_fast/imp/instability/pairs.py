"""One subnetwork's instability: for each repeat r, children 2r and 2r + 1 (lth_fast.imp.
instability.children), and the line between them evaluated at every alpha.

A pair's line is kept beside its children (PAIR_RECORD, with the children's checksums and the
line's settings), so a restarted analysis evaluates only lines it had not finished; the values
written are those computed, so a line evaluated again after a kill reads the same."""
from __future__ import annotations

import json
import os
from typing import List, Optional, Sequence

from ... import atomic
from ..parallel import Parallel
from .children import Subnetwork, build, child
from .line import alphas, batchnorms, evaluate, interpolate, recompute_batchnorm

PAIR_RECORD = "pair_{:03d}.json"
BN_MODES = ("recompute", "interpolate")


def bn_treatment(model, mode: str, batches: int) -> str:
    """What the output says about BatchNorm: none (the model has none), recomputed on N
    batches, or interpolated."""
    if not batchnorms(model):
        return "none"
    return f"recomputed ({batches} batches)" if mode == "recompute" else "interpolated"


def line(sub: Subnetwork, w1, w2, points: int, bn: str, bn_batches: int,
         splits: Sequence[str]) -> List[list]:
    """[split, alpha, error, loss] at each alpha of the line from w2 (alpha 0) to w1 (alpha 1)."""
    model, _ = build(sub, w1)
    recompute = bn == "recompute" and bool(batchnorms(model))
    par, out = Parallel(), []
    for a in alphas(points):
        par.load_full_state(model, {n: v.to(sub.device) for n, v in
                                    interpolate(w1, w2, a).items()})
        if recompute:
            recompute_batchnorm(model, sub.task, bn_batches)
        for split in splits:
            err, loss = evaluate(model, sub.task, split)
            out.append([split, a, err, loss])
    return out


def pair(sub: Subnetwork, folder: str, repeat: int, points: int, bn: str, bn_batches: int,
         splits: Sequence[str], log=None) -> List[list]:
    """Repeat `repeat`'s line: kept, or computed (training its children if need be) and kept."""
    w1 = child(sub, folder, 2 * repeat, log)
    w2 = child(sub, folder, 2 * repeat + 1, log)
    want = {"children": [atomic.content_sha256(w1), atomic.content_sha256(w2)],
            "points": points, "bn": bn, "bn_batches": bn_batches, "splits": list(splits)}
    path = os.path.join(folder, PAIR_RECORD.format(repeat))
    kept = _read(path)
    if kept is not None and kept.get("settings") == want:
        return kept["rows"]
    rows = line(sub, w1, w2, points, bn, bn_batches, splits)
    sub.write(lambda: atomic.write_json(path, {"settings": want, "rows": rows}))
    return rows


def _read(path: str) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) and isinstance(data.get("rows"), list) else None
    except (OSError, ValueError):
        return None


def subnetwork_rows(sub: Subnetwork, folder: str, level: int, repeats: int, points: int,
                    bn: str, bn_batches: int, splits: Sequence[str], log=None) -> List[dict]:
    """The tidy rows (level, k, repeat, split, alpha, error, loss) of one subnetwork."""
    sub.task.start(sub.device)   # the line reads the run's task (batches for BatchNorm)
    rows = []
    for r in range(repeats):
        for split, a, err, loss in pair(sub, folder, r, points, bn, bn_batches, splits, log):
            rows.append({"level": level, "k": sub.k, "repeat": r, "split": split, "alpha": a,
                         "error": err, "loss": loss})
    return rows


__all__ = ["BN_MODES", "PAIR_RECORD", "bn_treatment", "line", "pair", "subnetwork_rows"]
