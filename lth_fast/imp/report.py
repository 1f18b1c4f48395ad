"""IMP results as a table (printed, summary.csv) and plots (PNG): per level, the weights
remaining (in all and per pruned tensor) and, for the ticket and each control, the result at the
early-stopping iteration (minimum validation loss), that iteration, and the final result. The
result is the test accuracy for a classifier, and the validation and test loss (nats per
character) for a language model."""
from __future__ import annotations

import csv
import io
import math
from typing import Dict, List, Sequence

from .. import atomic
from .branches import BRANCHES

FIELDS = ("test_accuracy_at_early_stop", "early_stop_iteration", "final_test_accuracy")
TEXT_FIELDS = ("early_stop_val_loss", "early_stop_iteration", "test_loss_at_early_stop")
LAYER_PREFIX = "left:"   # summary.csv's per-tensor columns: "left:blocks.0.attn.qkv.weight"


def fields_of(levels_or_rows: Sequence[dict]) -> tuple:
    """TEXT_FIELDS for a language model's results (rows or metrics), else FIELDS."""
    for x in levels_or_rows:
        keys = (x["branches"]["ticket"] if "branches" in x else x)
        if any(k.endswith("test_loss_at_early_stop") for k in keys):
            return TEXT_FIELDS
    return FIELDS


def headline(branch: dict) -> str:
    """A branch's result in a few characters (for the progress bar)."""
    if "test_loss_at_early_stop" in branch:
        return f"{branch['early_stop_val_loss']:.3f} nats"
    return f"{100 * branch['test_accuracy_at_early_stop']:.1f}%"


def summary_rows(levels: Sequence[dict]) -> List[dict]:
    """One flat row per level from the levels' metrics.json contents: the results of every
    branch that ran at some level (in the registry's order; empty where it did not run), then
    the percentage of weights left in every pruned tensor."""
    fields = fields_of(levels)
    ran = [b for b in BRANCHES if any(b in m["branches"] for m in levels)]
    rows = []
    for m in levels:
        row = {"level": m["level"], "remaining": round(m["remaining"], 3)}
        for b in ran:
            r = m["branches"].get(b)
            for f in fields:
                row[f"{b}_{f}"] = None if r is None else r[f]
        for name, left in m.get("layers", {}).items():
            row[LAYER_PREFIX + name] = round(left, 3)
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
    """The rows as an aligned text table ('-' where a branch did not run): accuracies in %, or
    a language model's validation loss at early stop in nats and bits per character."""
    fields = fields_of(rows)
    text = fields is TEXT_FIELDS
    present = [b for b in BRANCHES if any(r.get(f"{b}_{fields[0]}") is not None for r in rows)]
    head = ["level", "remaining"]
    for b in present:
        head += ([f"{b} val@es", f"{b} bpc", f"{b} es-iter"] if text else
                 [f"{b} acc@es", f"{b} es-iter", f"{b} final"])

    def cell(v, how):
        if v is None:
            return "-"
        if how == "pct":
            return f"{100 * v:.1f}"
        if how == "nats":
            return f"{v:.3f}"
        if how == "bits":
            return f"{v / math.log(2):.3f}"
        return f"{v}"

    body = []
    for r in rows:
        line = [str(r["level"]), f"{r['remaining']:.1f}%"]
        for b in present:
            v = [r[f"{b}_{f}"] for f in fields]
            line += ([cell(v[0], "nats"), cell(v[0], "bits"), cell(v[1], "int")] if text else
                     [cell(v[0], "pct"), cell(v[1], "int"), cell(v[2], "pct")])
        body.append(line)
    width = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, width))
                     for line in [head] + body)


def write_plot(path, rows: Sequence[dict], title: str = "IMP") -> None:
    """Test accuracy (a language model: validation loss) at early stopping and the
    early-stopping iteration against the percentage of weights remaining (log scale, dense on
    the left), one line per branch."""
    import matplotlib
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    dense = rows[0] if rows and rows[0]["level"] == 0 else None
    fields = fields_of(rows)
    first = (("validation loss at early stop (nats/char)", 1) if fields is TEXT_FIELDS else
             ("test accuracy at early stop (%)", 100))
    for ax, f, ylabel, scale in ((axes[0], fields[0], *first),
                                 (axes[1], fields[1], "early-stop iteration", 1)):
        for b in BRANCHES:
            pts = [(r["remaining"], r[f"{b}_{f}"] * scale) for r in rows
                   if r.get(f"{b}_{f}") is not None]
            if BRANCHES[b].control and dense is not None and pts:  # from the dense point
                pts = [(dense["remaining"], dense[f"ticket_{f}"] * scale)] + pts
            if pts:
                color, line, marker = BRANCHES[b].style
                ax.plot(*zip(*pts), color=color, linestyle=line, marker=marker, markersize=4,
                        label=BRANCHES[b].label)
        if dense is not None:
            ax.axhline(dense[f"ticket_{f}"] * scale, color="gray", linewidth=0.8,
                       label="dense network")
        remaining_axis(ax, rows)
        ax.set_ylabel(ylabel)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    atomic.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)


def remaining_axis(ax, rows: Sequence[dict]) -> None:
    import matplotlib.ticker
    ax.set_xscale("log")
    levels = [r["remaining"] for r in rows]
    ax.set_xticks(levels[::2] if len(levels) > 8 else levels)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.invert_xaxis()
    ax.set_xlabel("weights remaining, all pruned tensors (%)")
    ax.grid(True, which="both", alpha=0.3)


def write_layer_plot(path, rows: Sequence[dict], title: str = "IMP") -> None:
    """The percentage of weights left in each pruned tensor against the whole model's, one line
    per tensor: where a global ranking prunes harder or softer than the average."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    names = [k[len(LAYER_PREFIX):] for k in (rows[0] if rows else {})
             if k.startswith(LAYER_PREFIX)]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, name in enumerate(names):
        ax.plot([r["remaining"] for r in rows], [r[LAYER_PREFIX + name] for r in rows],
                marker="o", markersize=3, color=f"C{i % 10}",
                linestyle=("-", "--", ":", "-.")[(i // 10) % 4], label=name)
    remaining_axis(ax, rows)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
    ax.set_ylabel("weights left in the tensor (%)")
    ax.legend(fontsize=7, ncol=2 if len(names) > 8 else 1)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    atomic.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
