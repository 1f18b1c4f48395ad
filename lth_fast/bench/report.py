"""The benchmark dict as markdown (what `lth-fast bench` prints)."""
from __future__ import annotations

from typing import List


def _params(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


def _mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:+.1f} MiB"


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(data: dict) -> str:
    results = data["results"]
    baselines: List[str] = []
    for r in results:
        baselines += [b for b in r["speedup"] if b not in baselines]
    header = ["op", "workload", "params", "median ms", "GB/s", "× floor"]
    header += [f"× {b} (speedup)" for b in baselines]
    rows = []
    for r in results:
        fast = next(iter(r["impls"].values()))
        rows.append([r["op"], r["workload"], _params(r["params"]), f"{fast['median_ms']:.2f}",
                     f"{r['gbps']:.1f}", f"{r['x_floor']:.2f}"]
                    + [f"{r['speedup'][b]:.1f}×" if b in r["speedup"] else "—"
                       for b in baselines])
    lines = _table(header, rows)
    if data.get("warnings"):
        lines = [f"**WARNING: {w}**" for w in data["warnings"]] + [""] + lines

    meta = data["meta"]
    for size, f in data["floors"].items():
        lines.append("")
        probes = ", ".join(f"{k} {v:.1f}" for k, v in f["probes_gbps"].items())
        lines.append(f"floor {size}: {f['gbps']:.1f} GB/s (best of the probes {probes} GB/s "
                     f"over {_params(f['numel'])} float32) · device {meta['device']} "
                     f"({meta['device_name']}) · torch {meta['torch']} · cpu_isa "
                     f"{meta['cpu_isa']} · {meta['threads']} threads · commit "
                     f"{meta['commit'] or '?'} · {meta['date']}")

    detail = []
    for r in results:
        for name, t in r["impls"].items():
            detail.append([r["op"], r["workload"], _params(r["params"]), name,
                           f"{t['median_ms']:.2f}", f"{t['min_ms']:.2f}", f"{t['max_ms']:.2f}",
                           str(t["reps"]), str(t["mismatches"])])
    lines += ["", "implementations (mismatches: result entries that differ from the fast "
              "implementation's):", ""]
    lines += _table(["op", "workload", "params", "impl", "median ms", "min ms", "max ms",
                     "reps", "mismatches"], detail)

    if data.get("peak_memory"):
        parts = []
        for m in data["peak_memory"]:
            label = f"{m['op']} {m['workload']} {m['size']}"
            if "error" in m:
                parts.append(f"{label}: failed ({m['error']})")
                continue
            unseen = m.get("slack_bytes", 0)
            slack = f", {_mb(unseen)} unseen" if unseen >= 2**16 else ""
            parts.append(f"{label} {_mb(m['extra_bytes'])} ({m['extra_pct']:.1f}% of "
                         f"weights{slack})")
        method = next((m["method"] for m in data["peak_memory"] if "method" in m), "?")
        lines += ["", f"peak extra memory of one fast call (fresh process, {method}): "
                  + "; ".join(parts)]
    return "\n".join(lines)
