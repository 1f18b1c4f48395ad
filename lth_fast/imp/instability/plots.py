"""The instability analysis's two plots: the barrier against the rewind iteration k (one line per
level, mean with std bars over the repeats), and the test error along the line for each k (one
panel per level, the mean over the repeats)."""
from __future__ import annotations

from collections import defaultdict
from typing import List, Sequence

from ... import atomic


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str) -> None:
    atomic.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def barrier_plot(path: str, summary: Sequence[dict], kind: str, threshold: float,
                 title: str) -> None:
    """Test barrier against k (symmetric-log x axis, so k = 0 has a place): error for a
    classifier; for a language model, the loss barrier as a share of the endpoint loss."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.3))
    by_level = defaultdict(list)
    for r in summary:
        by_level[r["level"]].append(r)
    for level, rows in by_level.items():
        rows = sorted(rows, key=lambda r: r["k"])
        if kind == "text":
            ys = [r["test_loss_barrier_mean"] / r["test_loss_ends_mean"] * 100 for r in rows]
            es = [(r["test_loss_barrier_std"] or 0.0) / r["test_loss_ends_mean"] * 100
                  for r in rows]
        else:
            ys = [r["test_error_barrier_mean"] * 100 for r in rows]
            es = [(r["test_error_barrier_std"] or 0.0) * 100 for r in rows]
        left = rows[0].get("remaining")
        label = f"level {level}" + (f" ({left:.1f}% left)" if left is not None else "")
        ax.errorbar([r["k"] for r in rows], ys, yerr=es, marker="o", capsize=3, label=label)
    ax.axhline(threshold * 100, color="gray", linestyle="--", linewidth=0.8,
               label=f"stable below {threshold * 100:g}%")
    ks = sorted({r["k"] for r in summary})
    ax.set_xscale("symlog", linthresh=max(1, min([k for k in ks if k > 0] or [1])))
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("rewind iteration k")
    ax.set_ylabel("test loss barrier (% of endpoint loss)" if kind == "text" else
                  "test error barrier (%)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def path_plot(path: str, tidy: Sequence[dict], title: str) -> None:
    """Test error along alpha, one panel per level, one line per k (mean over repeats)."""
    plt = _pyplot()
    levels = list(dict.fromkeys(r["level"] for r in tidy))
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.8), squeeze=False,
                             sharey=True)
    for ax, level in zip(axes[0], levels):
        lines = defaultdict(lambda: defaultdict(list))
        for r in tidy:
            if r["level"] == level and r["split"] == "test":
                lines[r["k"]][r["alpha"]].append(r["error"])
        for k in sorted(lines):
            pts: List[tuple] = sorted((a, sum(v) / len(v)) for a, v in lines[k].items())
            ax.plot([p[0] for p in pts], [100 * p[1] for p in pts], marker=".", label=f"k={k}")
        ax.set_title(f"level {level}", fontsize=9)
        ax.set_xlabel("alpha (1: child 1, 0: child 2)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("test error (%)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


__all__ = ["barrier_plot", "path_plot"]
