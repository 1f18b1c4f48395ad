"""How a pruning amount is read: a float is a fraction of the alive entries (k = round(f * alive),
as torch.nn.utils.prune does), an int is k itself. Shared by the fast ops and the reference.

The front doors ask for N:M selection with scope=NM(n, m) (lth_fast.ops.nm, which also reads
the deprecated scope="nm", n=, m=); is_nm is the reference's reading of its own arguments,
which keep the op's n and m (lth_fast.reference.prune_(..., scope="nm", n=, m=))."""
from __future__ import annotations

import math
import numbers
from typing import Sequence, Union

Amount = Union[float, int]
RANKINGS = ("global", "layer")  # the scopes that rank magnitudes and take an amount
SCOPES = RANKINGS + ("nm",)
NM_DEFAULT = (2, 4)  # prune_'s default n and m (NVIDIA's 2:4)


def is_nm(amount, scope: str, n, m) -> bool:
    """The reference's test for an N:M call (scope="nm"), which takes n and m and no amount; a
    ranking scope takes an amount and leaves n and m at their defaults. Raises for anything else
    that does not go together (the ranges of n and m are the op's checks)."""
    if scope != "nm":
        if (n, m) != NM_DEFAULT:
            raise ValueError(f"prune_: n and m are for scope='nm'; scope={scope!r} takes an "
                             f"amount")
        return False
    if amount is not None:
        raise ValueError("prune_: an N:M rule takes n and m, not an amount")
    for name, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"prune_: {name} must be an int, got {type(v).__name__}")
    return True


def parse_amount(amount: Union[Amount, Sequence[Amount]], scope: str, n: int):
    """Returns (fractions, counts, layerwise): exactly one of the two lists is non-empty."""
    if type(amount) is float and 0.0 <= amount <= 1.0 and scope in RANKINGS:
        return [amount], [], scope == "layer"  # the common call, without the checks below
    if scope == "nm":
        raise ValueError("prune_: an N:M rule takes n and m, not an amount")
    if scope not in SCOPES:
        raise ValueError(f"prune_: scope must be 'global', 'layer' or 'nm', got {scope!r}")
    if amount is None:
        raise TypeError(f"prune_: amount[0] must be a float fraction or an int count, got None "
                        f"(scope={scope!r} needs an amount)")
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
