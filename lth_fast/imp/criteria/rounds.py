"""The rounds of an iterative criterion (synflow): from the alive counts now to those a
selection (Pruner.prune's keywords) leaves, on an exponential schedule of the density, each
round an exact count for the fused selection (ties to the earlier position, never more).

Round r of R leaves round(a0 * (a / a0) ** (r / R)) entries of the a0 alive now (per tensor for
scope "layer", in all for "global"), the last round exactly a: from a dense start it is
Tanaka et al.'s density d ** (r / R), rounded to a count."""
from __future__ import annotations

from typing import Dict, List

from ...ops import NM


def pruned(alive: int, amount) -> int:
    """What Pruner.prune takes of `alive` for `amount` (an int count, or a fraction rounded
    as Python's round does: docs/semantics.md)."""
    return amount if isinstance(amount, int) else round(amount * alive)


def leaves(alive: Dict[str, int], selection: dict):
    """What `selection` leaves alive: {name: count} for scope "layer", an int for "global"."""
    scope, amount = selection.get("scope", "global"), selection.get("amount")
    if scope == "global":
        total = sum(alive.values())
        return total - pruned(total, amount)
    if scope == "layer":
        per = selection.get("per_layer") or {}
        return {n: a - pruned(a, per.get(n, amount)) for n, a in alive.items()}
    raise ValueError(f"iterative pruning prunes to a density; scope {scope!r} has none")


def schedule(start: int, end: int, rounds: int) -> List[int]:
    """The alive count after each of `rounds` rounds, start -> end, never growing."""
    if start <= 0 or end >= start:
        return [end] * rounds
    out, prev = [], start
    for r in range(1, rounds + 1):
        prev = min(prev, max(end, round(start * (end / start) ** (r / rounds))))
        out.append(prev)
    out[-1] = end
    return out


def selections(pruner, selection: dict, rounds: int) -> List[dict]:
    """Pruner.prune's keywords for each round (int counts), the last leaving what `selection`
    leaves. An N:M scope is one round (a pattern, not a density)."""
    if isinstance(selection.get("scope"), NM):
        return [selection]
    alive = {n: int(pruner.masks[n].sum()) for n in pruner.names}
    end = leaves(alive, selection)
    if isinstance(end, int):
        counts = schedule(sum(alive.values()), end, rounds)
        return [dict(amount=a - b, scope="global")
                for a, b in zip([sum(alive.values())] + counts, counts)]
    per = {n: schedule(alive[n], end[n], rounds) for n in pruner.names}
    steps = []
    for r in range(rounds):
        before = {n: (alive[n] if r == 0 else per[n][r - 1]) for n in pruner.names}
        steps.append(dict(amount=0, scope="layer",
                          per_layer={n: before[n] - per[n][r] for n in pruner.names}))
    return steps


__all__ = ["leaves", "pruned", "schedule", "selections"]
