"""Instability from the tidy rows: for each (level, k, repeat, split), the barrier of error and of
loss is the largest value along the line minus the mean of its two ends (Frankle et al. 2020),
and the summary gives its mean and spread over the repeats and whether the subnetwork is stable.

The stability rule:
  - a classifier is stable when its test error barrier (mean over repeats) is below `threshold`
    (default 0.02: the paper's 2% error);
  - a language model when its test loss barrier is below `threshold` times the mean test loss
    of the two ends (default 2% of the endpoint loss; docs/instability.md says why)."""
from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from ... import atomic

TIDY = ("level", "k", "repeat", "split", "alpha", "error", "loss")
DEFAULT_THRESHOLD = 0.02


def rule_text(kind: str, threshold: float) -> str:
    if kind == "text":
        return f"test loss barrier < {threshold:g} x endpoint loss"
    return f"test error barrier < {threshold:g}"


def per_repeat(rows: Sequence[dict]) -> Dict[tuple, dict]:
    """{(level, k, repeat, split): {error_barrier, loss_barrier, error_ends, loss_ends}} where
    ends are (value at alpha 0, value at alpha 1)."""
    lines = defaultdict(list)
    for r in rows:
        lines[(r["level"], r["k"], r["repeat"], r["split"])].append(r)
    out = {}
    for key, line in lines.items():
        line.sort(key=lambda r: r["alpha"])
        one = {}
        for m in ("error", "loss"):
            ends = (line[0][m], line[-1][m])
            one[f"{m}_barrier"] = max(r[m] for r in line) - (ends[0] + ends[1]) / 2
            one[f"{m}_ends"] = ends
        out[key] = one
    return out


def _mean_std(values: List[float]):
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def summary_rows(rows: Sequence[dict], kind: str, threshold: float,
                 info: Dict[tuple, dict]) -> List[dict]:
    """One row per (level, k), in the order of the tidy rows: each split's error and loss
    barriers (mean, std over repeats), both ends' errors (means), and the verdict. info[(level,
    k)]: columns to put first (the level's density, repeats, points, BatchNorm treatment)."""
    reps = per_repeat(rows)
    keys = list(dict.fromkeys((r["level"], r["k"]) for r in rows))
    splits = list(dict.fromkeys(r["split"] for r in rows))
    out = []
    for level, k in keys:
        row = {"level": level, "k": k, **info.get((level, k), {})}
        for split in splits:
            got = [v for (lv, kk, _, s), v in sorted(reps.items(), key=lambda kv: kv[0][2])
                   if (lv, kk, s) == (level, k, split)]
            for m in ("error", "loss"):
                mean, sd = _mean_std([g[f"{m}_barrier"] for g in got])
                row[f"{split}_{m}_barrier_mean"], row[f"{split}_{m}_barrier_std"] = mean, sd
            for end in (0, 1):
                row[f"{split}_error_at_alpha{end}"] = statistics.fmean(
                    g["error_ends"][end] for g in got)
            if split == "test":
                ends = statistics.fmean((g["loss_ends"][0] + g["loss_ends"][1]) / 2 for g in got)
                row["test_loss_ends_mean"] = ends
        row["stable"] = stable(row, kind, threshold)
        row["rule"] = rule_text(kind, threshold)
        out.append(row)
    return out


def stable(row: dict, kind: str, threshold: float) -> bool:
    if kind == "text":
        return row["test_loss_barrier_mean"] < threshold * row["test_loss_ends_mean"]
    return row["test_error_barrier_mean"] < threshold


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)   # exact: the CSV reads back to the same floats
    return str(v)


def csv_text(rows: Sequence[dict], fields: Optional[Sequence[str]] = None) -> str:
    buf = io.StringIO()
    fields = list(fields or (rows[0] if rows else ()))
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow([_cell(r[f]) for f in fields])
    return buf.getvalue()


def write_csv(path: str, rows: Sequence[dict], fields: Optional[Sequence[str]] = None) -> None:
    atomic.write_text(path, csv_text(rows, fields))


def read_tidy(path: str) -> List[dict]:
    """The tidy CSV back as rows of typed values."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{"level": int(r["level"]), "k": int(r["k"]), "repeat": int(r["repeat"]),
                 "split": r["split"], "alpha": float(r["alpha"]), "error": float(r["error"]),
                 "loss": float(r["loss"])} for r in csv.DictReader(f)]


__all__ = ["DEFAULT_THRESHOLD", "TIDY", "csv_text", "per_repeat", "read_tidy", "rule_text",
           "stable", "summary_rows", "write_csv"]
