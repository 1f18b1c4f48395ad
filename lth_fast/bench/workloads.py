"""Model-shaped weight/mask lists at a target parameter count, generated in place.

Two shapes of model that scale to a target size: "resnet" (a ResNet-34-like mix of 7x7/3x3/1x1
convs and a 1000-way Linear, many small and a few large tensors) and "transformer" (a stack of
identical big matrices); and two small models of the papers at their real size, whatever the
target: "lenet" (LeNet-300-100, 266K weights in 3 tensors) and "resnet20" (CIFAR ResNet-20,
268K in 20 tensors), where a call's fixed cost shows.
Weights are float32 randn / sqrt(fan_in); masks are bool with ~20% already False (a seeded
Bernoulli(0.8)), as after one round of pruning. Everything is written into tensors allocated once
with torch.empty, so generating a workload never holds a temporary copy (the peak-memory probe
relies on that) and the masks can be restored from a saved copy between repetitions.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

import torch

Shape = Tuple[int, ...]
ALIVE = 0.8  # fraction of mask entries still True in a fresh workload
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9}


def parse_size(text: str) -> int:
    """'10M' -> 10_000_000; accepts K, M, G/B (billion) suffixes, decimals and plain integers."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGB]?)\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"bad size {text!r}: expected a number with an optional K/M/G/B suffix")
    n = int(round(float(m.group(1)) * _UNITS[m.group(2).upper()]))
    if n <= 0:
        raise ValueError(f"bad size {text!r}: must be positive")
    return n


def numel(shapes: Sequence[Shape]) -> int:
    return sum(math.prod(s) for s in shapes)


def resnet_shapes(c: int) -> List[Shape]:
    """ResNet-34 weights with base width c (c=64 is the real one): stem, [3,4,6,3] basic blocks
    of two 3x3 convs at widths c,2c,4c,8c, a 1x1 downsample where the width changes, fc."""
    shapes: List[Shape] = [(c, 3, 7, 7)]
    cin = c
    for width, blocks in zip((c, 2 * c, 4 * c, 8 * c), (3, 4, 6, 3)):
        for b in range(blocks):
            shapes += [(width, cin, 3, 3), (width, width, 3, 3)]
            if b == 0 and cin != width:
                shapes.append((width, cin, 1, 1))
            cin = width
    shapes.append((1000, 8 * c))
    return shapes


def transformer_shapes(d: int, blocks: int) -> List[Shape]:
    """`blocks` encoder blocks of width d: qkv (3d,d), proj (d,d), fc1 (4d,d), fc2 (d,4d)."""
    return [s for _ in range(blocks) for s in ((3 * d, d), (d, d), (4 * d, d), (d, 4 * d))]


def _closest(fn: Callable[[int], List[Shape]], target: int, hi: int) -> List[Shape]:
    """The argument in [1, hi] whose (monotonic) parameter count is closest to target."""
    lo_arg, hi_arg = 1, hi
    while lo_arg < hi_arg:  # first argument reaching the target
        mid = (lo_arg + hi_arg) // 2
        if numel(fn(mid)) < target:
            lo_arg = mid + 1
        else:
            hi_arg = mid
    cands = [a for a in (lo_arg - 1, lo_arg) if a >= 1]
    return fn(min(cands, key=lambda a: abs(numel(fn(a)) - target)))


def resnet_for(target: int) -> List[Shape]:
    return _closest(resnet_shapes, target, hi=1 << 16)


def transformer_for(target: int) -> List[Shape]:
    """d=512 below 20M parameters, 768 from there on; below one d=512 block (3.1M) the width
    shrinks (a multiple of 64 where possible) so small sizes still land near the target."""
    d = 512 if target < 20_000_000 else 768
    if 12 * d * d > target:
        d = max(1, int(math.sqrt(target / 12)))
        d = d // 64 * 64 or d
    return _closest(lambda b: transformer_shapes(d, b), target, hi=1 << 20)


LENET_300_100: List[Shape] = [(300, 784), (100, 300), (10, 100)]


def resnet20_shapes() -> List[Shape]:
    """CIFAR ResNet-20 (He et al. 2016): a 3x3 stem, three stages of three basic blocks at
    widths 16, 32, 64 (parameter-free shortcuts), and the 10-way Linear."""
    shapes: List[Shape] = [(16, 3, 3, 3)]
    cin = 16
    for width in (16, 32, 64):
        for _ in range(3):
            shapes += [(width, cin, 3, 3), (width, width, 3, 3)]
            cin = width
    return shapes + [(10, 64)]


SHAPES: Dict[str, Callable[[int], List[Shape]]] = {
    "resnet": resnet_for,
    "transformer": transformer_for,
    "lenet": lambda target: list(LENET_300_100),
    "resnet20": lambda target: resnet20_shapes(),
}
FIXED = ("lenet", "resnet20")  # real sizes: the target is ignored


@dataclass
class Workload:
    """weights/masks as a model would hold them, plus a saved copy of the masks to restore."""
    name: str
    size: str
    weights: List[torch.Tensor]
    masks: List[torch.Tensor]
    saved_masks: List[torch.Tensor] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(w.numel() for w in self.weights)

    @property
    def weight_bytes(self) -> int:
        return sum(w.numel() * w.element_size() for w in self.weights)

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    def save_masks(self) -> None:
        """Keeps a copy of the current masks (allocated once) for restore_masks."""
        if not self.saved_masks:
            self.saved_masks = [torch.empty_like(m) for m in self.masks]
        for s, m in zip(self.saved_masks, self.masks):
            s.copy_(m)

    def restore_masks(self) -> None:
        for m, s in zip(self.masks, self.saved_masks):
            m.copy_(s)


def fill_(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], seed: int = 0) -> None:
    """Writes fresh randn/sqrt(fan_in) weights and Bernoulli(ALIVE) masks in place."""
    gen = torch.Generator(device=weights[0].device if weights else "cpu").manual_seed(seed)
    for w, m in zip(weights, masks):
        fan_in = max(1, math.prod(w.shape[1:]))  # in_features (* kernel area)
        w.normal_(generator=gen).mul_(1.0 / math.sqrt(fan_in))
        m.bernoulli_(ALIVE, generator=gen)


def make(name: str, size: str, device="cpu", seed: int = 0, save: bool = True) -> Workload:
    """The `name` workload at `size` parameters (e.g. '10M') on `device`."""
    if name not in SHAPES:
        raise ValueError(f"unknown workload {name!r}; choose from {sorted(SHAPES)}")
    shapes = SHAPES[name](parse_size(size))
    weights = [torch.empty(s, dtype=torch.float32, device=device) for s in shapes]
    masks = [torch.empty(s, dtype=torch.bool, device=device) for s in shapes]
    fill_(weights, masks, seed)
    wl = Workload(name, size, weights, masks)
    if save:
        wl.save_masks()
    return wl
