"""The pruning-at-init comparison of several seeds of one lth-fast imp run, as docs/ shows it:
one row per branch (the ticket, the reinit and random controls, each criterion and its two
ablations), one column per level where the pruning-at-init branches trained, each cell the test
accuracy at early stop, mean ± sample std over the seeds (lth_fast.imp.analyses.seeds); then
Frankle et al.'s three findings checked cell by cell, and a plot.

A difference of two means is called resolved when it exceeds both the sum of the two spreads
and twice the sampling error of a difference of two accuracies on the test set averaged over
the seeds, 2 * sqrt(2 p (1 - p) / (N n)) (N test examples, n seeds, p the mean accuracy).

    python benchmarks/pai_table.py runs/pai-lenet-s0 runs/pai-lenet-s1 \\
        --out docs/results/pai-lenet-mnist5k      (writes .md and .png)
"""
from __future__ import annotations

import argparse
import json
import math
import os

from lth_fast import atomic
from lth_fast.imp import BRANCHES
from lth_fast.imp.analyses.seeds import combine

FIELD = "test_accuracy_at_early_stop"


def cell(v) -> str:
    return "–" if v is None else (f"{100 * v[0]:.1f} ± {100 * v[1]:.1f}" if v[1] is not None
                                  else f"{100 * v[0]:.1f}")


def resolved(a, b, n_test: int) -> tuple:
    """(mean difference a - b in points, whether it is resolved)."""
    n = min(a[2], b[2])
    p = (a[0] + b[0]) / 2
    sampling = 2 * math.sqrt(2 * p * (1 - p) / (n_test * n))
    spread = (a[1] or 0.0) + (b[1] or 0.0)
    d = a[0] - b[0]
    return 100 * d, abs(d) > max(sampling, spread)


def verdict(d: float, ok: bool, want_positive: bool) -> str:
    if not ok:
        return f"{d:+.1f} unresolved"
    return f"{d:+.1f} {'holds' if (d > 0) == want_positive else 'CONTRADICTS'}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", required=True, help="PREFIX: writes PREFIX.md and PREFIX.png")
    args = p.parse_args()
    rows = combine(args.run_dirs)
    with open(os.path.join(args.run_dirs[0], "level_00", "metrics.json")) as f:
        n_test = json.load(f).get("test_examples", 1000)
    ran = [b for b in BRANCHES if any(r.get(f"{b}_{FIELD}") for r in rows)]
    pai = [b for b in ran if BRANCHES[b].criterion]
    levels = [r for r in rows if any(r.get(f"{b}_{FIELD}") for b in pai)]
    shown = [b for b in ("ticket", "reinit", "random") if b in ran] + pai
    head = ["branch"] + [f"level {r['level'][0]:.0f}: {r['remaining'][0]:.1f}%" for r in levels]
    lines = [f"| {' | '.join(head)} |", "|---|" + "---:|" * len(levels)]
    for b in shown:
        lines.append(f"| {b} | " + " | ".join(cell(r.get(f"{b}_{FIELD}")) for r in levels) + " |")
    dense = rows[0][f"ticket_{FIELD}"]
    lines.append(f"\nDense network (level 0): {cell(dense)}. Test accuracy at early stop in %, "
                 f"mean ± sample std over {len(args.run_dirs)} seeds; {n_test} test examples.")
    # the three findings, per criterion and level
    crit = list(dict.fromkeys(BRANCHES[b].criterion for b in pai))
    lines += ["", "| criterion | level | method − ticket (< 0) | method − random (> 0) | "
                  "shuffled − method (≥ 0) | reinit − method (≥ 0) |",
              "|---|---:|---:|---:|---:|---:|"]
    for c in crit:
        for r in levels:
            m = r.get(f"{c}_{FIELD}")
            if m is None:
                continue
            out = []
            for other, sign, flip in (("ticket", False, False), ("random", True, False),
                                      (c + "_shuffled", True, True), (c + "_reinit", True, True)):
                o = r.get(f"{other}_{FIELD}")
                if o is None:
                    out.append("–")
                    continue
                d, ok = resolved(o, m, n_test) if flip else resolved(m, o, n_test)
                if flip:   # an ablation is harmless unless resolved and negative
                    out.append(f"{d:+.1f} " + ("unresolved" if not ok else
                                               "holds" if d > 0 else "CONTRADICTS"))
                else:
                    out.append(verdict(d, ok, sign))
            lines.append(f"| {c} | {r['level'][0]:.0f} | " + " | ".join(out) + " |")
    lines += ["", "The ticket's own ablations are the reinit control (its masks, re-drawn "
                  "weights) and, for the per-layer proportions, the random control:"]
    for r in levels:
        tk = r[f"ticket_{FIELD}"]
        parts = []
        for other in ("reinit", "random"):
            o = r.get(f"{other}_{FIELD}")
            if o is not None:
                d, ok = resolved(o, tk, n_test)
                parts.append(f"{other} − ticket {d:+.1f} ({'resolved' if ok else 'unresolved'})")
        lines.append(f"- level {r['level'][0]:.0f} ({r['remaining'][0]:.1f}%): " + ", ".join(parts))
    text = "\n".join(lines)
    atomic.write_text(args.out + ".md", text + "\n")
    plot(args.out + ".png", rows, levels, crit)
    print(text)


def plot(path, rows, levels, crit) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), sharey=True)
    xs = [r["remaining"][0] for r in levels]
    for ax, variant, title in zip(axes, ("", "_shuffled", "_reinit"),
                                  ("pruned at init", "masks shuffled in each layer",
                                   "surviving weights reinitialised")):
        for b in ("ticket", "random") + tuple(c + variant for c in crit):
            vals = [r.get(f"{b}_{FIELD}") for r in levels]
            if any(v is None for v in vals):
                continue
            color, line, marker = BRANCHES[b].style
            ax.errorbar(xs, [100 * v[0] for v in vals], yerr=[100 * (v[1] or 0) for v in vals],
                        color=color, linestyle=line, marker=marker, capsize=3,
                        label=BRANCHES[b].label)
        ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3g"))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining (%)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    axes[0].set_ylabel("test accuracy at early stop (%), mean ± std")
    fig.tight_layout()
    atomic.write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


if __name__ == "__main__":
    main()
