"""The distributed tests' cases: full tensors built from a seed, the same on every rank, and
the single-process oracle over them."""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch

import lth_fast


def build(case: Dict) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """(weights, masks) of a case: "shapes", "dtype", "seed", "kind" (random, ties: magnitudes
    from a few values with both signs and both zeros), "density" of the existing masks."""
    g = torch.Generator().manual_seed(case["seed"])
    dtype = case.get("dtype", torch.float32)
    weights, masks = [], []
    for shape in case["shapes"]:
        kind = case.get("kind", "random")
        if kind == "ties":
            levels = torch.tensor([0.0, -0.0, 0.5, -0.5, 1.0, -1.0])
            w = levels[torch.randint(0, 6, shape, generator=g)]
        elif kind == "one_value":
            w = torch.where(torch.rand(shape, generator=g) < 0.5, 1.0, -1.0)
        else:
            w = torch.randn(shape, generator=g)
        weights.append(w.to(dtype))
        masks.append(torch.rand(shape, generator=g) < case.get("density", 0.8))
    return weights, masks


def oracle(case: Dict):
    """Single-process prune_ over the full tensors: (masks, stats)."""
    weights, masks = build(case)
    stats = lth_fast.prune_(weights, masks, case["amount"], scope=case.get("scope", "global"))
    return masks, stats


def assemble(per_rank_masks: List[List[torch.Tensor]]) -> List[torch.Tensor]:
    """The full masks from every rank's dim-0 parts, in rank order."""
    return [torch.cat([masks[i] for masks in per_rank_masks]) for i in
            range(len(per_rank_masks[0]))]
