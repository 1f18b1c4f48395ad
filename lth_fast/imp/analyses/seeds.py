"""Several runs of one experiment (seeds) combined: per level, the mean and the spread (sample
standard deviation) of every branch's result and of the weights left per pruned tensor, read
from each run directory's summary.csv. `lth-fast seeds RUN_DIR RUN_DIR ...` prints the table
(markdown) and, with --plot PREFIX, writes the plots there."""
from __future__ import annotations

import math
import statistics
from typing import Dict, List, Sequence

import argparse

from ... import atomic
from ..branches import BRANCHES
from ..report import LAYER_PREFIX, TEXT_FIELDS, fields_of, remaining_axis, write_layer_plot
from ..run_dir import read_summary
from ..same_experiment import check_seeds
from .base import ANALYSES, Analysis, add_run_dirs


def combine(run_dirs: Sequence) -> List[Dict[str, tuple]]:
    """Per level present in every run: {column: (mean, std, n)} over the runs that have a
    value (std None for one value; the whole entry None where a branch did not run). The runs
    are checked to be seeds of one experiment first (lth_fast.imp.same_experiment)."""
    check_seeds(run_dirs)
    runs = [read_summary(d) for d in run_dirs]
    columns = list(runs[0][0])
    for d, r in zip(run_dirs, runs):
        if list(r[0]) != columns:
            raise ValueError(f"{d} has other columns than {run_dirs[0]}: not the same "
                             f"experiment")
    out = []
    for i in range(min(len(r) for r in runs)):
        row = {}
        for c in columns:
            vals = [r[i][c] for r in runs if r[i][c] is not None]
            if not vals:
                row[c] = None
                continue
            sd = statistics.stdev(vals) if len(vals) > 1 else None
            row[c] = (statistics.fmean(vals), sd, len(vals))
        out.append(row)
    return out


def format_markdown(rows: List[Dict[str, tuple]]) -> str:
    """The combined table: per level, weights left and each branch's result at early stop
    (mean ± std; a language model's validation loss in nats, and the mean in bits/char)."""
    fields = fields_of(rows)
    text = fields is TEXT_FIELDS
    present = [b for b in BRANCHES if any(r.get(f"{b}_{fields[0]}") for r in rows)]
    n = max(v[2] for r in rows for v in r.values() if v)
    what = ("validation loss at early stop in nats/char, mean ± std (the mean in bits/char)"
            if text else "test accuracy at early stop in %, mean ± std")
    head = ["level", "weights left"] + [BRANCHES[b].short for b in present]
    lines = [f"| {' | '.join(head)} |", "|" + "---:|" * len(head)]
    for r in rows:
        cells = [f"{r['level'][0]:.0f}", f"{r['remaining'][0]:.1f}%"]
        for b in present:
            v = r.get(f"{b}_{fields[0]}")
            if v is None:
                cells.append("–")
                continue
            mean, sd, count = v
            scale, digits = (1, 3) if text else (100, 1)
            spread = (f" ± {scale * sd:.{digits}f}" if sd is not None and count == n else
                      f" (n={count})")   # a value of fewer runs has no spread over them all
            cells.append(f"{scale * mean:.{digits}f}{spread}"
                         + (f" ({mean / math.log(2):.3f})" if text else ""))
        lines.append(f"| {' | '.join(cells)} |")
    lines.append(f"\n{what}; std: the sample standard deviation over {n} runs")
    return "\n".join(lines)


def write_plots(prefix: str, rows: List[Dict[str, tuple]], title: str) -> List[str]:
    """PREFIX.png (each branch's result against the weights left, mean with ± std bars) and
    PREFIX-layers.png (the weights left in each pruned tensor, mean over the runs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fields = fields_of(rows)
    text = fields is TEXT_FIELDS
    flat = [{"remaining": r["remaining"][0]} for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for b in BRANCHES:
        color, _, marker = BRANCHES[b].style
        pts = [(r["remaining"][0], r[f"{b}_{fields[0]}"]) for r in rows
               if r.get(f"{b}_{fields[0]}") is not None]
        if BRANCHES[b].control and pts and rows[0]["level"][0] == 0:
            pts = [(rows[0]["remaining"][0], rows[0][f"ticket_{fields[0]}"])] + pts
        if pts:
            scale = 1 if text else 100
            ax.errorbar([p[0] for p in pts], [p[1][0] * scale for p in pts],
                        yerr=[(p[1][1] or 0.0) * scale for p in pts], color=color,
                        marker=marker, markersize=4, capsize=3, label=BRANCHES[b].label)
    dense = rows[0][f"ticket_{fields[0]}"]
    ax.axhline(dense[0] * (1 if text else 100), color="gray", linewidth=0.8, label="dense")
    remaining_axis(ax, flat)
    ax.set_ylabel("validation loss at early stop (nats/char)" if text else
                  "test accuracy at early stop (%)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    paths = [prefix + ".png"]
    atomic.write_atomic(paths[0], lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)

    names = [k[len(LAYER_PREFIX):] for k in rows[0] if k.startswith(LAYER_PREFIX)]
    if names:
        layer_rows = [{**f, **{LAYER_PREFIX + n: r[LAYER_PREFIX + n][0] for n in names}}
                      for f, r in zip(flat, rows)]
        paths.append(prefix + "-layers.png")
        write_layer_plot(paths[1], layer_rows, title=title + ": weights left per tensor")
    return paths


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_dirs(p, "run directories of one experiment (e.g. runs/gpt_pydoc-s0 "
                    "runs/gpt_pydoc-s1)")
    p.add_argument("--plot", metavar="PREFIX", default=None,
                   help="write PREFIX.png and PREFIX-layers.png (default: none)")
    p.add_argument("--title", default="IMP over seeds", help="the plots' title")


def run(args: argparse.Namespace) -> int:
    rows = combine(args.run_dirs)
    print(format_markdown(rows))
    if args.plot:
        for path in write_plots(args.plot, rows, args.title):
            print(f"wrote {path}")
    return 0


ANALYSES.register(Analysis(
    "seeds", help="combine the summary.csv of several imp runs (seeds): mean and spread per "
                  "level, as a markdown table and plots",
    add_arguments=add_arguments, run=run))
