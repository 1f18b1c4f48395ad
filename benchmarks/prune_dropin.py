"""The drop-ins against what they replace, in one run: torch.nn.utils.prune.global_unstructured
(L1) against lth_fast.nn.utils.prune's, on Linear- and conv-shaped models of 10M and 50M
parameters, and Lightning's ModelPruning.apply_pruning (global L1) against ours at 10M, its first
pruning and its second (which goes through torch's PruningContainer in both).

Each measurement runs in a fresh process on a fresh model (the first pruning, which builds
torch's reparametrization: weight_orig, a float weight_mask and the pruned weight), after a
warm-up on a small model, so no memory freed by an earlier model is there to reuse. Times and
memory are medians over --repeats processes, the implementations taking turns. Peak extra
memory is the process's peak resident size during the call (VmHWM, reset through
/proc/self/clear_refs) minus its resident size before.

Three more rows split the work: `select` is the fused selection alone (prune_ on the weights and
bool masks), so the rest of ours is building torch's state (the float weight_mask and the pruned
weight); `reparam` is torch's own custom_from_mask on every tensor from bool masks already made
(what torch's reparametrization alone costs in time and memory); `floor` allocates the new
memory torch's state takes (a mask and a pruned weight per tensor, 8 bytes per fp32 weight) and
writes it once, as any drop-in must (its first touch, a page fault per page, is most of it).
So torch's time over floor + select estimates the speed-up of a drop-in that did nothing but
rank the weights and write torch's state on this machine (an estimate: medians of separate
processes); the table gives it beside the speed-up of each turn.

    python benchmarks/prune_dropin.py [--repeats 3] [--out benchmarks/results/PREFIX]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

import torch
from torch import nn

CASES = [("linear", "10M"), ("conv", "10M"), ("linear", "50M"), ("conv", "50M")]
IMPLS = ["torch", "ours", "reparam", "select", "floor"]
LIGHTNING = ["lightning_torch", "lightning_ours", "lightning_torch_again", "lightning_ours_again"]
AMOUNT = 0.2


def layers(shape: str, size: str):
    """linear: Linear(d, d) layers; conv: Conv2d(c, c, 3) layers; about `size` weights."""
    if shape == "linear":
        d, n = (1000, 10) if size == "10M" else (2048, 12)
        return [nn.Linear(d, d, bias=False) for _ in range(n)]
    c, n = (256, 17) if size == "10M" else (512, 21)
    return [nn.Conv2d(c, c, 3, bias=False) for _ in range(n)]


def model(shape: str, size: str) -> nn.Sequential:
    torch.manual_seed(0)
    with torch.no_grad():
        return nn.Sequential(*layers(shape, size))


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _call(impl: str, net: nn.Sequential):
    """What is timed for `impl`, prepared: returns the call."""
    import torch.nn.utils.prune as tp

    import lth_fast
    import lth_fast.nn.utils.prune as lp
    params = [(m, "weight") for m in net]
    if impl == "torch":
        return lambda: tp.global_unstructured(params, pruning_method=tp.L1Unstructured,
                                              amount=AMOUNT)
    if impl == "ours":
        return lambda: lp.global_unstructured(params, pruning_method=lp.L1Unstructured,
                                              amount=AMOUNT)
    if impl == "floor":
        return lambda: [torch.empty_like(m.weight).fill_(1) for m in net for _ in range(2)]
    masks = [torch.ones(m.weight.shape, dtype=torch.bool) for m in net]
    if impl == "select":
        weights = [m.weight.detach() for m in net]
        return lambda: lth_fast.prune_(weights, masks, AMOUNT)
    if impl == "reparam":
        lth_fast.prune_([m.weight.detach() for m in net], masks, AMOUNT)
        return lambda: [tp.custom_from_mask(m, "weight", k.to(m.weight.dtype))
                        for m, k in zip(net, masks)]
    if impl.startswith("lightning"):
        import lightning as L
        if impl.startswith("lightning_torch"):
            from lightning.pytorch.callbacks import ModelPruning
        else:
            from lth_fast.integrations.lightning import ModelPruning

        class Module(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = net
        cb = ModelPruning("l1_unstructured", amount=AMOUNT, use_global_unstructured=True,
                          parameter_names=["weight"], verbose=0)
        cb.setup(None, Module(), "fit")
        if impl.endswith("_again"):  # the second pruning: through torch's PruningContainer
            cb.apply_pruning(AMOUNT)
        return lambda: cb.apply_pruning(AMOUNT)
    raise ValueError(impl)


def one(impl: str, shape: str, size: str) -> dict:
    """One measurement in this (fresh) process: no memory freed by an earlier model to reuse."""
    torch.set_num_threads(os.cpu_count() or 1)
    _call(impl, nn.Sequential(nn.Linear(64, 64, bias=False), nn.Linear(64, 64, bias=False)))()
    fn = _call(impl, model(shape, size))
    before = _status("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_extra_bytes": _status("VmHWM") - before}


def _once(impl: str, shape: str, size: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", impl, shape, size],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{impl} {shape} {size} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(impls, shape: str, size: str, repeats: int) -> dict:
    """Medians over `repeats` fresh processes per impl, the impls taking turns (a slow spell of
    the machine falls on all of them, not on one)."""
    got = {impl: [] for impl in impls}
    for _ in range(repeats):
        for impl in impls:
            got[impl].append(_once(impl, shape, size))
    row = {}
    for impl, g in got.items():
        row[impl] = {"seconds": statistics.median(x["seconds"] for x in g),
                     "peak_extra_bytes": statistics.median(x["peak_extra_bytes"] for x in g),
                     "all_seconds": [x["seconds"] for x in g]}
        print(shape, size, impl, f"{row[impl]['seconds'] * 1e3:.1f} ms",
              f"{row[impl]['peak_extra_bytes'] / 2**20:.0f} MiB", flush=True)
    return row


def _per_turn(a: dict, b: dict) -> str:
    """a's time over b's in each turn, lowest to highest (the spread the median hides)."""
    ratios = sorted(x / y for x, y in zip(a["all_seconds"], b["all_seconds"]))
    return ", ".join(f"{r:.1f}" for r in ratios)


def table(rows) -> str:
    lines = ["| model | params | torch.nn.utils.prune | lth_fast | speed-up | of which fused "
             "selection | of which torch's state (float mask, pruned weight) | torch's "
             "custom_from_mask alone | peak extra: torch | ours | torch's custom_from_mask "
             "alone | ours / custom_from_mask alone | the state's new memory, written once "
             "(floor) | ours / floor | speed-up per turn | at the floor: torch / (floor + "
             "selection) |",
             "|" + "---|" * 16]
    for r in rows:
        if r["shape"] == "lightning":
            continue
        t, o, p, s, f = (r[i] for i in IMPLS)
        mib = [x["peak_extra_bytes"] / 2**20 for x in (t, o, p)]
        lines.append(
            f"| {r['shape']} | {r['size']} | {t['seconds'] * 1e3:.0f} ms | "
            f"{o['seconds'] * 1e3:.0f} ms | {t['seconds'] / o['seconds']:.1f}x | "
            f"{s['seconds'] * 1e3:.0f} ms ({s['seconds'] / o['seconds']:.0%}) | "
            f"{(o['seconds'] - s['seconds']) * 1e3:.0f} ms "
            f"({1 - s['seconds'] / o['seconds']:.0%}) | {p['seconds'] * 1e3:.0f} ms | "
            f"{mib[0]:.0f} MiB | {mib[1]:.0f} MiB | {mib[2]:.0f} MiB | {mib[1] / mib[2]:.2f} | "
            f"{f['seconds'] * 1e3:.0f} ms | {o['seconds'] / f['seconds']:.2f} | "
            f"{_per_turn(t, o)} | {t['seconds'] / (f['seconds'] + s['seconds']):.1f}x |")
    lt = next(r for r in rows if r["shape"] == "lightning")
    lines += ["", "| Lightning ModelPruning.apply_pruning (global L1, 10M, Linear) | Lightning's "
              "| ours | speed-up | speed-up per turn |", "|---|---|---|---|---|"]
    for when, suffix in (("first pruning", ""), ("second pruning", "_again")):
        a, b = lt["lightning_torch" + suffix], lt["lightning_ours" + suffix]
        lines.append(f"| {when} | {a['seconds'] * 1e3:.0f} ms | {b['seconds'] * 1e3:.0f} ms | "
                     f"{a['seconds'] / b['seconds']:.1f}x | {_per_turn(a, b)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="write OUT.json and OUT.md")
    p.add_argument("--one", nargs=3, metavar=("IMPL", "SHAPE", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(*args.one)))
        return 0
    sys.path.insert(0, os.path.dirname(__file__))
    from machine import cpu_model

    import lth_fast
    rows = []
    for shape, size in CASES:
        rows.append({"shape": shape, "size": size, **run(IMPLS, shape, size, args.repeats)})
    rows.append({"shape": "lightning", "size": "10M",
                 **run(LIGHTNING, "linear", "10M", args.repeats)})
    text = table(rows)
    print(text)
    if args.out:
        meta = {"cpu": cpu_model(), "isa": lth_fast.cpu_isa(), "threads": os.cpu_count(),
                "torch": torch.__version__, "lth_fast": lth_fast.__version__,
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": "python benchmarks/prune_dropin.py " + " ".join(argv or sys.argv[1:]),
                "amount": AMOUNT, "repeats": args.repeats}
        with open(args.out + ".json", "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
        with open(args.out + ".md", "w") as f:
            f.write(f"# The pruning drop-ins against torch.nn.utils.prune and Lightning\n\n"
                    f"{meta['cpu']} ({meta['isa']}, {meta['threads']} cores), torch "
                    f"{meta['torch']}, lth_fast {meta['lth_fast']}, {meta['date']}.\n"
                    f"`{meta['command']}`: first global L1 pruning of {AMOUNT:.0%} of a fresh "
                    f"model, median of {args.repeats}.\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
