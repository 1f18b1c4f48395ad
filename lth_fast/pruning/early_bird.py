"""EarlyBird: tells a training loop when the ticket it would draw has stopped changing.

Early-Bird tickets (You et al., ICLR 2020): keep the last `window` masks drawn during training
(a FIFO); once the normalized Hamming distance from the newest mask to every older one is below
`eps`, the ticket has emerged and dense training can stop. The paper drew channel masks from
BatchNorm scales; here the masks are weight masks, the ones Pruner.prune would leave now
(Pruner.draw: one fused prune_ into scratch masks, no copy of the weights), kept bit-packed
(1 bit per weight) and compared with lth_fast.mask_distance (popcount of XOR). The paper's
eps = 0.1 was chosen for channel masks; what it means for weight masks is measured in the
README ("From search to shipping"), not assumed.

    bird = EarlyBird(window=5, eps=0.1)
    for epoch in ...:
        train_one_epoch()
        if bird.observe(pruner, 0.2, scope="global", step=epoch):
            break                                    # draw the ticket now: pruner.prune(0.2)
"""
from __future__ import annotations

import collections
import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..ops import NM, mask_distance
from ..ops.nm import read_scope
from .ticket import pack_bits

Reduce = Callable[[List[int]], List[int]]


class EarlyBird:
    """A FIFO of the last `window` masks and the rule that fires on it.

    observe(pruner, ...) draws the masks prune(...) would leave and pushes them; push(masks)
    takes masks drawn any other way. Both return True when the rule holds for the newest mask.
    `history` holds (step, largest distance from the newest mask to an older one) for every
    push once the window is full; `fired_at` is the step of the first push that fired.
    reduce: for masks sharded over ranks, a function summing a list of ints over the ranks
    (every rank calls it in the same order), so each rank sees the distance of whole masks."""

    def __init__(self, window: int = 5, eps: float = 0.1, *,
                 reduce: Optional[Reduce] = None) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ValueError(f"EarlyBird: window must be an int >= 2 (the newest mask and at "
                             f"least one older one), got {window!r}")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or math.isnan(eps) \
                or not 0.0 < eps <= 1.0:
            raise ValueError(f"EarlyBird: eps must be a distance in (0, 1], got {eps!r}")
        self.window, self.eps, self.reduce = window, float(eps), reduce
        self._fifo: collections.deque = collections.deque(maxlen=window)
        self._names: Optional[Tuple[str, ...]] = None
        self._numels: List[int] = []
        self._scratch: Optional[Dict[str, Tensor]] = None
        self.history: List[Tuple[Optional[int], float]] = []
        self.fired_at: Optional[int] = None
        self.pushes = 0

    def observe(self, pruner, amount=None, scope: Union[str, NM] = "global", per_layer=None, *,
                scores=None, step: Optional[int] = None, **deprecated) -> bool:
        """Draws the masks pruner.prune(amount, scope, per_layer, scores=scores) would leave now
        (neither the pruner's masks nor the weights change) and pushes them. scope=NM(n, m)
        draws N:M masks; the old scope="nm", n=, m= works for one release, with a
        DeprecationWarning."""
        rule = read_scope("EarlyBird.observe", amount, scope, deprecated)
        self._scratch = pruner.draw(amount, rule or scope, per_layer, scores=scores,
                                    into=self._scratch)
        return self.push(self._scratch, step)

    def push(self, masks, step: Optional[int] = None) -> bool:
        """Adds masks ({name: bool tensor} or a list of bool tensors, the same tensors' masks
        at every push) as the newest; True when the window is full and the newest is closer
        than eps to every older one."""
        names, tensors = _named(masks)
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor) or t.dtype != torch.bool:
                raise TypeError(f"EarlyBird.push: masks[{i}] must be a torch.bool tensor")
        numels = [t.numel() for t in tensors]
        if self._names is None:
            self._names, self._numels = names, numels
        elif names != self._names or numels != self._numels:
            raise ValueError(f"EarlyBird.push: the masks are not those of the earlier pushes "
                             f"(names {list(names)[:3]}..., sizes differ or reordered); "
                             f"call reset() to monitor other tensors")
        self._fifo.append([pack_bits(t) for t in tensors])
        self.pushes += 1
        if len(self._fifo) < self.window:
            return False
        newest = self._fifo[-1]
        far = max(self._distance(old, newest) for old in list(self._fifo)[:-1])
        self.history.append((step, far))
        fired = far < self.eps
        if fired and self.fired_at is None:
            self.fired_at = step if step is not None else self.pushes
        return fired

    def _distance(self, a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
        d = mask_distance(a, b, numels=self._numels)
        if self.reduce is None:
            return d.value
        differ, total = self.reduce([d.differ, d.total])
        return differ / total if total else 0.0

    @property
    def fired(self) -> bool:
        return self.fired_at is not None

    def reset(self) -> None:
        """Forgets every mask (e.g. at the start of the next level)."""
        self.__init__(self.window, self.eps, reduce=self.reduce)


def _named(masks) -> Tuple[Tuple[str, ...], List[Tensor]]:
    if isinstance(masks, Mapping):
        return tuple(masks), list(masks.values())
    tensors = list(masks)
    return tuple(str(i) for i in range(len(tensors))), tensors


__all__ = ["EarlyBird"]
