"""mask_distance's result and how its arguments are read, shared by the front door
(lth_fast.ops.api) and the reference (lth_fast.ops.reference). Semantics: docs/semantics.md,
"Mask distance"."""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from .checks import check_tensors

Masks = Union[Sequence[torch.Tensor], Mapping[str, torch.Tensor]]
Numels = Union[Sequence[int], Mapping[str, int], None]


@dataclass(frozen=True)
class MaskDistance:
    """The normalized Hamming distance between two mask sets: `differ` of `total` entries
    differ, and per tensor `layers[i] = (differ, total)`. `names` holds the keys when the masks
    were given as dicts (then `per_layer` is a dict too)."""
    differ: int
    total: int
    layers: Tuple[Tuple[int, int], ...] = ()
    names: Optional[Tuple[str, ...]] = None

    @property
    def value(self) -> float:
        """differ / total, 0.0 when there is no entry."""
        return self.differ / self.total if self.total else 0.0

    @property
    def per_layer(self) -> Union[List[float], Dict[str, float]]:
        """Each tensor's differ / total (0.0 for a zero-size tensor): a list in the order of the
        masks, or {name: fraction} when the masks were dicts."""
        values = [d / t if t else 0.0 for d, t in self.layers]
        return values if self.names is None else dict(zip(self.names, values))

    @classmethod
    def from_counts(cls, differ: Sequence[int], totals: Sequence[int],
                    names: Optional[Sequence[str]]) -> "MaskDistance":
        layers = tuple((int(d), int(t)) for d, t in zip(differ, totals))
        return cls(sum(d for d, _ in layers), sum(t for _, t in layers), layers,
                   None if names is None else tuple(names))


def read_inputs(masks_a: Masks, masks_b: Masks, numels: Numels):
    """(names or None, list a, list b, numels as the op takes them ([] for bool masks), the
    element count of each mask). Dicts must have the same keys in the same order."""
    op = "mask_distance"
    names = None
    a_is_map, b_is_map = isinstance(masks_a, Mapping), isinstance(masks_b, Mapping)
    if a_is_map != b_is_map:
        raise TypeError(f"{op}: masks_a and masks_b must both be dicts or both be lists, got "
                        f"{type(masks_a).__name__} and {type(masks_b).__name__}")
    if a_is_map:
        names = list(masks_a)
        if list(masks_b) != names:
            raise ValueError(f"{op}: masks_b's keys {list(masks_b)} are not masks_a's "
                             f"{names} (the same keys in the same order)")
        a, b = [masks_a[n] for n in names], [masks_b[n] for n in names]
        if isinstance(numels, Mapping):
            if list(numels) != names:
                raise ValueError(f"{op}: numels' keys {list(numels)} are not the masks' {names}")
            numels = [numels[n] for n in names]
    else:
        a, b = list(masks_a), list(masks_b)
        if isinstance(numels, Mapping):
            raise TypeError(f"{op}: numels is a dict but the masks are lists")
    check_tensors(op, "masks_a", a)
    check_tensors(op, "masks_b", b)
    packed = bool(a) and a[0].dtype == torch.uint8
    if numels is None:
        if packed:
            raise ValueError(f"{op}: bit-packed uint8 masks need numels, the element count of "
                             f"each mask")
        counts = []
    else:
        counts = list(numels)
        for i, c in enumerate(counts):
            if isinstance(c, bool) or not isinstance(c, numbers.Integral):
                raise TypeError(f"{op}: numels[{i}] must be an int, got {type(c).__name__}")
        counts = [int(c) for c in counts]
    totals = counts if packed else [t.numel() for t in a]
    return names, a, b, counts, totals
