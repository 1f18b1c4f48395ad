"""What pruning at initialisation costs (issue "Tickets against pruning at initialisation", item 4):
the score and selection time of each criterion on a ~10M-weight network against one training
epoch of it, and SynFlow's 100 rounds against one whole LeNet-300-100 training.

    the 10M network: LeNet-shaped, 784 -> 3000 -> 2500 -> 10 (9.88M pruned weights), on the
    5,000 embedded MNIST digits (an epoch: 3,000 examples, 50 Adam steps of batch 60); each
    criterion prunes it globally to 4.5% of its weights (LeNet's level 14), scoring on 10
    examples per class; the selection is the fused prune_ (timed inside SynFlow's rounds too)
    LeNet-300-100: SynFlow's 100 rounds to level 14's per-layer counts, and one training of
    the lenet_mnist5k preset (1,200 iterations with its 49 evaluations)

    OMP_NUM_THREADS=1 python benchmarks/pai_cost.py --out docs/results/pai-cost
    (writes pai-cost.md and pai-cost.json; --device cuda for a GPU)
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
from torch import nn

import lth_fast
from lth_fast import atomic
from lth_fast.imp import preset
from lth_fast.imp.criteria import CRITERIA, Scoring
from lth_fast.imp.build import level_rates, new_model, new_pruner
from lth_fast.imp.tasks import load_task
from lth_fast.imp.train import train_run
from lth_fast.pruning import Pruner
from machine import cpu_model

CRITERIA_TIMED = ("snip", "grasp", "grasp_abs", "synflow", "magnitude_init")


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def wide(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 3000), nn.ReLU(), nn.Linear(3000, 2500),
                         nn.ReLU(), nn.Linear(2500, 10))


def timed_prune(pruner: Pruner, device):
    """Wraps pruner.prune so that the selection's own time is summed in the returned list."""
    spent, real = [0.0], pruner.prune

    def prune(*a, **kw):
        sync(device)
        t0 = time.perf_counter()
        out = real(*a, **kw)
        sync(device)
        spent[0] += time.perf_counter() - t0
        return out
    pruner.prune = prune
    return spent


def criterion_cost(name, model_fn, task, selection_of, device, rounds=100):
    model = model_fn().to(device)
    pruner = Pruner(model)
    ctx = Scoring(pruner, seed=0, task=task, device=device, examples=10, rounds=rounds)
    select = timed_prune(pruner, device)
    sync(device)
    t0 = time.perf_counter()
    CRITERIA[name].prune(ctx, selection_of(pruner))
    sync(device)
    total = time.perf_counter() - t0
    return {"total_s": total, "select_s": select[0], "score_s": total - select[0],
            "density": pruner.density}


def training_cost(cfg, model, device):
    task = load_task(cfg)
    model = model.to(device)
    result = train_run(model, new_pruner(model, cfg), task, cfg)
    return result.seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="PREFIX: writes PREFIX.md and PREFIX.json")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    dev = args.device
    cfg = preset("lenet_mnist5k", device=dev)
    task = load_task(cfg)
    task.start(dev)
    # the load average: these machines are shared, so the times are only as quiet as it says
    out = {"device": dev, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": f"{cpu_model()} ({lth_fast.cpu_isa()}, {os.cpu_count()} cores)",
           "load_average": os.getloadavg()[0],
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if torch.device(dev).type == "cuda":
        out["machine"] = torch.cuda.get_device_name()

    def to_level14(pruner):   # global, 4.5% of the weights left
        n = sum(pruner.masks[k].numel() for k in pruner.names)
        return dict(amount=n - round(0.045 * n), scope="global")

    n_wide = sum(m.weight.numel() for m in wide() if isinstance(m, nn.Linear))
    epoch_cfg = cfg.replace(iterations=50, eval_every=50)
    out["wide"] = {"weights": n_wide, "epoch": training_cost(epoch_cfg, wide(), dev),
                   "criteria": {c: criterion_cost(c, wide, task, to_level14, dev)
                                for c in CRITERIA_TIMED}}
    # LeNet-300-100: SynFlow to level 14's per-layer counts, against one training
    lenet = new_model(cfg, task, 0, dev)
    rates = level_rates(cfg, lenet, new_pruner(lenet, cfg))
    density = {n: (1 - r) ** 14 for n, r in rates.items()}

    def to_lenet14(pruner):
        return dict(amount=0, scope="layer", per_layer={
            n: pruner.masks[n].numel() - round(density[n] * pruner.masks[n].numel())
            for n in pruner.names})
    out["lenet"] = {"training": training_cost(cfg, new_model(cfg, task, 0, dev), dev),
                    "synflow": criterion_cost("synflow", lambda: new_model(cfg, task, 0, dev),
                                              task, to_lenet14, dev)}
    atomic.write_text(args.out + ".json", json.dumps(out, indent=1) + "\n")
    atomic.write_text(args.out + ".md", report(out) + "\n")
    print(report(out))


def report(r: dict) -> str:
    w, epoch = r["wide"], r["wide"]["epoch"]["train"]
    lines = [f"{r['machine']}, {r['device']}, torch {r['torch']}, {r['threads']} thread(s), "
             f"{r['date']}, load average {r['load_average']:.1f} at the start (a shared "
             f"machine: the times are not quiet ones)", "",
             f"{w['weights'] / 1e6:.2f}M-weight MLP, pruned globally to 4.5%; one training "
             f"epoch (50 Adam steps of 60 digits): {epoch:.2f} s", "",
             "| criterion | score (s) | fused selection (s) | selection share | "
             "total / epoch |", "|---|---:|---:|---:|---:|"]
    for name, c in w["criteria"].items():
        lines.append(f"| {name} | {c['score_s']:.3f} | {c['select_s']:.3f} | "
                     f"{100 * c['select_s'] / c['total_s']:.1f}% | "
                     f"{c['total_s'] / epoch:.2f} |")
    le = r["lenet"]
    whole = le["training"]["train"] + le["training"]["eval"]
    s = le["synflow"]
    lines += ["", f"LeNet-300-100: SynFlow's 100 rounds to level 14 ({100 * s['density']:.1f}% "
                  f"left) take {s['total_s']:.2f} s (selection {s['select_s']:.2f} s); one "
                  f"training of 1,200 iterations {whole:.1f} s: "
                  f"{100 * s['total_s'] / whole:.1f}% of it."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
