"""What an early-bird run (`lth-fast imp --early-bird`) did, and how its tickets compare with
those of the same experiment trained in full (`--against RUN_DIR`): per level, both tickets'
results at early stop, their early-stop iterations, and the normalized Hamming distance between
their masks (lth_fast.mask_distance)."""
from __future__ import annotations

from typing import List, Optional, Sequence

from ..ops import mask_distance
from .report import TEXT_FIELDS, fields_of
from .run_dir import read_summary, RunDir


def training_iterations(levels: Sequence[dict]) -> int:
    """The iterations a run trained, over every level and branch (from its evaluations)."""
    total = 0
    for m in levels:
        for b in m["branches"].values():
            its = [e[0] for e in b["evals"]]
            total += max(its) - min(its)
    return total


def early_bird_lines(levels: Sequence[dict]) -> List[str]:
    """Where level 0 stopped and what that saved, from the run's metrics."""
    eb = levels[0].get("early_bird") if levels else None
    if eb is None:
        return []
    iterations = eb["stopped_at"] + eb["saved_iterations"]
    if eb["iteration"] is None:
        return [f"early-bird (eps {eb['eps']:g}, window {eb['window']}): never fired; the "
                f"dense network trained all {iterations} iterations"]
    done = training_iterations(levels)
    share = eb["saved_iterations"] / (done + eb["saved_iterations"])
    far = [d for _, d in eb["distances"]]
    return [f"early-bird (eps {eb['eps']:g}, window {eb['window']}): the ticket was drawn at "
            f"iteration {eb['iteration']} of {iterations}; {eb['saved_iterations']} dense "
            f"iterations saved, {100 * eb['saved_iterations'] / iterations:.0f}% of level 0's "
            f"training and {100 * share:.1f}% of the {done + eb['saved_iterations']:,} "
            f"iterations this run would have trained (largest distance in the window: "
            f"{far[0]:.3f} when first full, {far[-1]:.3f} when drawn)",
            "  level 0 stopped there, so its accuracy is that of a dense network trained "
            f"{eb['iteration']} iterations, and the matching above is against it; --against "
            f"RUN_DIR compares each ticket with a fully trained run's"]


def compare(run_dir: str, against: str) -> str:
    """A table: per level finished in both runs, each ticket's result at early stop, the
    difference, each early-stop iteration, and the distance between the two levels' masks."""
    a, b = read_summary(run_dir), read_summary(against)
    text = fields_of(a) is TEXT_FIELDS
    key = "ticket_test_loss_at_early_stop" if text else "ticket_test_accuracy_at_early_stop"
    scale, unit = (1.0, "nats") if text else (100.0, "%")
    head = ["level", "left", f"this ({unit})", f"against ({unit})", "diff", "es-iter",
            "against es-iter", "mask distance"]
    body = []
    for ra, rb in zip(a, b):
        level = int(ra["level"])
        dist: Optional[float] = None
        if level > 0:
            ma, mb = RunDir(run_dir).load_masks(level), RunDir(against).load_masks(level)
            if ma.names != mb.names:
                raise ValueError(f"{run_dir} and {against} prune other tensors: not the same "
                                 f"experiment")
            dist = mask_distance(ma.masks, mb.masks).value
        va, vb = ra[key] * scale, rb[key] * scale
        body.append([str(level), f"{ra['remaining']:.1f}%", f"{va:.2f}", f"{vb:.2f}",
                     f"{va - vb:+.2f}", f"{ra['ticket_early_stop_iteration']:.0f}",
                     f"{rb['ticket_early_stop_iteration']:.0f}",
                     "-" if dist is None else f"{dist:.4f}"])
    width = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, width))
                     for line in [head] + body)


__all__ = ["early_bird_lines", "compare", "training_iterations"]
