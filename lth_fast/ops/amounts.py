"""How a pruning amount is read: a float is a fraction of the alive entries (k = round(f * alive),
as torch.nn.utils.prune does), an int is k itself. Shared by the fast ops and the reference."""
from __future__ import annotations

import math
import numbers
from typing import Sequence, Union

Amount = Union[float, int]
SCOPES = ("global", "layer")


def parse_amount(amount: Union[Amount, Sequence[Amount]], scope: str, n: int):
    """Returns (fractions, counts, layerwise): exactly one of the two lists is non-empty."""
    if type(amount) is float and 0.0 <= amount <= 1.0 and scope in SCOPES:
        return [amount], [], scope == "layer"  # the common call, without the checks below
    if scope not in SCOPES:
        raise ValueError(f"prune_: scope must be 'global' or 'layer', got {scope!r}")
    layerwise = scope == "layer"
    if isinstance(amount, (list, tuple)):
        if not layerwise:
            raise ValueError("prune_: a global ranking takes one amount, got a sequence "
                             "(use scope='layer' for per-tensor amounts)")
        if len(amount) not in (1, n):
            raise ValueError(f"prune_: layerwise amounts must be one value or one per tensor "
                             f"({n} tensors), got {len(amount)}")
        values = list(amount)
    else:
        values = [amount]
    kinds = set()
    for i, a in enumerate(values):
        if isinstance(a, bool) or not isinstance(a, numbers.Real):
            raise TypeError(f"prune_: amount[{i}] must be a float fraction or an int count, "
                            f"got {type(a).__name__}")
        if isinstance(a, numbers.Integral):
            kinds.add("count")
            if a < 0:
                raise ValueError(f"prune_: amount[{i}] = {a} is a negative count")
        else:
            kinds.add("fraction")
            if math.isnan(a) or not 0.0 <= a <= 1.0:
                raise ValueError(f"prune_: amount[{i}] = {a} is not a fraction in [0, 1]")
    if len(kinds) > 1:
        raise TypeError("prune_: amounts mix int counts and float fractions; use one kind")
    if "count" in kinds:
        return [], [int(a) for a in values], layerwise
    return [float(a) for a in values], [], layerwise


def k_for(fractions, counts, i: int, alive: int) -> int:
    """k of ranking i: round(f * alive) (Python's round, half to even) or the count itself."""
    if counts:
        return counts[0 if len(counts) == 1 else i]
    return round(fractions[0 if len(fractions) == 1 else i] * alive)
