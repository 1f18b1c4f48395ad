"""What the early-bird threshold eps means for weight masks: trains an experiment's dense network
(level 0) once, to the end, and at every evaluation draws the mask level 1 would prune
(Pruner.draw) and feeds it to an EarlyBird monitor that never stops training. Then, for each
eps, it reports where the monitor would have fired, and how far the mask drawn there is from
the mask of the fully trained network (normalized Hamming distance, lth_fast.mask_distance),
beside the scale of that distance: two independent random masks pruning the same fraction p
differ in 2 p (1 - p) of their entries.

    python benchmarks/early_bird_eps.py --out docs/early-bird/eps   (writes eps.md and eps.png)
"""
from __future__ import annotations

import argparse
import os

import torch

from lth_fast import atomic, mask_distance
from lth_fast.imp import preset
from lth_fast.imp.build import level_rates, new_model, new_pruner
from lth_fast.imp.tasks import load_task
from lth_fast.imp.train import train_run
from lth_fast.pruning.early_bird import EarlyBird

EPS = (0.2, 0.1, 0.05, 0.02, 0.01)


def measure(preset_name: str, seed: int, window: int):
    cfg = preset(preset_name, seed=seed, levels=1, controls=())
    task = load_task(cfg)
    model = new_model(cfg, task, cfg.seed)
    pruner = new_pruner(model, cfg)
    rule = cfg.pruning.rule.args(level_rates(cfg, model, pruner))
    bird = EarlyBird(window, 1e-12)  # records every distance, never fires
    drawn = {}

    def after_eval(it: int) -> bool:
        masks = pruner.draw(**rule)
        drawn[it] = masks
        bird.push(masks, step=it)
        return False

    run = train_run(model, pruner, task, cfg, stop_after_eval=after_eval)
    final = pruner.draw(**rule)
    pruned = 1.0 - sum(int(m.sum()) for m in final.values()) / sum(m.numel()
                                                                   for m in final.values())
    evals = {e[0]: e for e in run.evals}
    rows = []
    for eps in EPS:
        fire = next((step for step, d in bird.history if d < eps), None)
        if fire is None:
            rows.append({"eps": eps, "iteration": None})
            continue
        to_final = mask_distance(drawn[fire], final).value
        rows.append({"eps": eps, "iteration": fire, "saved": cfg.training.iterations - fire,
                     "to_final": to_final, "val_accuracy": evals[fire][2]})
    return cfg, bird.history, rows, pruned


def write(out: str, cfg, history, rows, pruned: float, window: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    scale = 2 * pruned * (1 - pruned)
    lines = [f"Early-bird thresholds for weight masks: {cfg.model.name} on {cfg.data.dataset}, seed "
             f"{cfg.seed}, {cfg.training.iterations} iterations, evaluation every {cfg.eval_every}, "
             f"window {window}; the mask is level 1's ({cfg.pruning.scope} scope, rate {cfg.pruning.rate:g}, "
             f"{100 * pruned:.1f}% of the weights pruned). Two independent random masks of that rate "
             f"differ in {scale:.3f} of their entries.", "",
             "| eps | fires at iteration | dense iterations saved | validation accuracy there "
             "| distance of its mask to the fully trained network's |",
             "|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["iteration"] is None:
            lines.append(f"| {r['eps']:g} | never | 0 | – | – |")
        else:
            lines.append(f"| {r['eps']:g} | {r['iteration']} | {r['saved']} "
                         f"({100 * r['saved'] / cfg.training.iterations:.0f}%) | "
                         f"{100 * r['val_accuracy']:.1f}% | {r['to_final']:.4f} |")
    atomic.write_text(out + ".md", "\n".join(lines) + "\n")
    atomic.write_json(out + ".json", {"history": history, "rows": rows, "random_scale": scale})
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([h[0] for h in history], [h[1] for h in history], marker="o", markersize=3,
            label=f"largest distance, newest mask to the {window - 1} before it")
    for eps in EPS:
        ax.axhline(eps, color="gray", linewidth=0.6, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("training iteration (dense network)")
    ax.set_ylabel("normalized Hamming distance")
    ax.set_title(f"Early-bird distances, weight masks: {cfg.model.name} on {cfg.data.dataset}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic.write_atomic(out + ".png", lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    print("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="lenet_mnist5k")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--out", default="docs/early-bird/eps")
    args = p.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    cfg, history, rows, pruned = measure(args.preset, args.seed, args.window)
    write(args.out, cfg, history, rows, pruned, args.window)


if __name__ == "__main__":
    main()
