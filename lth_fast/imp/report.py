"""IMP results as a table (printed, summary.csv) and a plot (PNG): per level, the weights
remaining and, for the ticket and each control, the test accuracy at the early-stopping
iteration (minimum validation loss), that iteration, and the final test accuracy."""
from __future__ import annotations

import csv
import io
from typing import Dict, List, Sequence

from .. import atomic

BRANCHES = ("ticket", "reinit", "random")
LABELS = {"ticket": "winning ticket", "reinit": "random reinit", "random": "random pruning"}
FIELDS = ("test_accuracy_at_early_stop", "early_stop_iteration", "final_test_accuracy")


def summary_rows(levels: Sequence[dict]) -> List[dict]:
    """One flat row per level from the levels' metrics.json contents."""
    rows = []
    for m in levels:
        row = {"level": m["level"], "remaining": round(m["remaining"], 3)}
        for b in BRANCHES:
            r = m["branches"].get(b)
            for f in FIELDS:
                row[f"{b}_{f}"] = None if r is None else r[f]
        rows.append(row)
    return rows


def write_summary_csv(path, rows: Sequence[dict]) -> None:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    atomic.write_text(path, buf.getvalue())


def time_share(levels: Sequence[dict]) -> Dict[str, float]:
    """Seconds in pruning, rewinding, training, evaluating and the whole of the levels, summed
    over levels; `share` is pruning + rewinding over the whole. (Masking has no time of its
    own: MaskedSGD / MaskedAdam zero the pruned entries inside their fused step.)"""
    tot = {k: sum(m["seconds"].get(k, 0.0) for m in levels)
           for k in ("prune", "rewind", "train", "eval", "level")}
    lth = tot["prune"] + tot["rewind"]
    tot["share"] = lth / tot["level"] if tot["level"] else 0.0
    return tot


def format_table(rows: Sequence[dict]) -> str:
    """The rows as an aligned text table (accuracies in %, '-' where a branch did not run)."""
    present = [b for b in BRANCHES if any(r[f"{b}_{FIELDS[0]}"] is not None for r in rows)]
    head = ["level", "remaining"]
    for b in present:
        head += [f"{b} acc@es", f"{b} es-iter", f"{b} final"]

    def cell(v, pct):
        if v is None:
            return "-"
        return f"{100 * v:.1f}" if pct else f"{v}"

    body = []
    for r in rows:
        line = [str(r["level"]), f"{r['remaining']:.1f}%"]
        for b in present:
            line += [cell(r[f"{b}_{FIELDS[0]}"], True), cell(r[f"{b}_{FIELDS[1]}"], False),
                     cell(r[f"{b}_{FIELDS[2]}"], True)]
        body.append(line)
    width = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, width))
                     for line in [head] + body)


def write_plot(path, rows: Sequence[dict], title: str = "IMP") -> None:
    """Test accuracy at early stopping and the early-stopping iteration against the percentage
    of weights remaining (log scale, dense on the left), one line per branch."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"ticket": ("C0", "-", "o"), "reinit": ("C1", "--", "s"),
              "random": ("C2", ":", "^")}
    dense = rows[0] if rows and rows[0]["level"] == 0 else None
    for ax, f, ylabel, scale in ((axes[0], FIELDS[0], "test accuracy at early stop (%)", 100),
                                 (axes[1], FIELDS[1], "early-stop iteration", 1)):
        for b in BRANCHES:
            pts = [(r["remaining"], r[f"{b}_{f}"] * scale) for r in rows
                   if r[f"{b}_{f}"] is not None]
            if b != "ticket" and dense is not None and pts:
                pts = [(dense["remaining"], dense[f"ticket_{f}"] * scale)] + pts
            if pts:
                color, line, marker = styles[b]
                ax.plot(*zip(*pts), color=color, linestyle=line, marker=marker, markersize=4,
                        label=LABELS[b])
        if dense is not None:
            ax.axhline(dense[f"ticket_{f}"] * scale, color="gray", linewidth=0.8,
                       label="dense network")
        ax.set_xscale("log")
        levels = [r["remaining"] for r in rows]
        ax.set_xticks(levels[::2] if len(levels) > 8 else levels)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    atomic.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
