"""What a pruning call did: counts and the threshold magnitude, per ranking."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch


@dataclass(frozen=True)
class PruneStats:
    alive_before: int
    pruned: int
    threshold: Optional[float]  # largest pruned |w|; None when nothing was pruned (or layerwise)
    layers: Tuple["PruneStats", ...] = ()  # one per tensor for scope="layer"

    @property
    def alive_after(self) -> int:
        return self.alive_before - self.pruned

    @classmethod
    def from_tensors(cls, counts: torch.Tensor, thresholds: torch.Tensor, layerwise: bool):
        rows = [cls(int(a), int(p), None if math.isnan(t) else float(t))
                for (a, p), t in zip(counts.tolist(), thresholds.tolist())]
        if not layerwise:
            return rows[0]
        return cls(sum(r.alive_before for r in rows), sum(r.pruned for r in rows), None, tuple(rows))
