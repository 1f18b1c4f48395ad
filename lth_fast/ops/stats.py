"""What a pruning call did: counts and the threshold magnitude, per ranking."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch


@dataclass(frozen=True)
class PruneStats:
    alive_before: int
    pruned: int
    threshold: Optional[float]  # largest pruned |w|; None when nothing was pruned (or layerwise)
    layers: Tuple["PruneStats", ...] = ()  # one per tensor for scope="layer" and "nm"

    @property
    def alive_after(self) -> int:
        return self.alive_before - self.pruned

    @classmethod
    def from_rows(cls, rows: Sequence["PruneStats"], layerwise: bool) -> "PruneStats":
        """The result of a call from its rankings' rows (one global, or one per tensor)."""
        if not layerwise:
            return rows[0]
        return cls(sum(r.alive_before for r in rows), sum(r.pruned for r in rows), None,
                   tuple(rows))

    @classmethod
    def from_tensors(cls, counts: torch.Tensor, thresholds: torch.Tensor, layerwise: bool):
        """From what the op returns: int64 [G, 2] (alive before, pruned), float64 [G]."""
        rows = [cls(int(a), int(p), None if math.isnan(t) else float(t))
                for (a, p), t in zip(counts.tolist(), thresholds.tolist())]
        return cls.from_rows(rows, layerwise)


def to_tensors(rows: Sequence[PruneStats], device) -> Tuple[torch.Tensor, torch.Tensor]:
    """The op's return value for `rows` (the inverse of PruneStats.from_tensors)."""
    counts = torch.tensor([[r.alive_before, r.pruned] for r in rows], dtype=torch.long,
                          device=device).reshape(len(rows), 2)
    thresholds = torch.tensor([math.nan if r.threshold is None else r.threshold for r in rows],
                              dtype=torch.double, device=device)
    return counts, thresholds
