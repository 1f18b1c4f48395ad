"""NM(n, m): the N:M rule as a value. `scope=NM(2, 4)` is how every front door (lth_fast.prune_,
lth_fast.distributed.prune_, Pruner.prune / draw, EarlyBird.observe) is asked for N:M selection
instead of a ranking (docs/semantics.md, "N:M selection"); the value's presence is the test.

read_scope() is the one place that reads a front door's scope, and the one place that turns the
old spelling (scope="nm", n=..., m=...) into an NM, with a DeprecationWarning that says what to
write. Importable without lth_fast._C."""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Mapping, Optional

from .amounts import RANKINGS
from .checks import NM_MAX_M

_OLD_DEFAULT = (2, 4)  # what scope="nm" without n or m meant


@dataclass(frozen=True)
class NM:
    """Keep the n largest |w| of every m consecutive weights along the input dimension (NVIDIA's
    2:4 sparsity is NM(2, 4)). A local rule, not a ranking: it takes no amount. 1 <= n <= m <= 64
    (the kernels keep a group on the stack); n == m prunes nothing."""
    n: int
    m: int

    def __post_init__(self) -> None:
        for name in ("n", "m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"NM(n, m): {name} must be an int, got {type(v).__name__}")
            object.__setattr__(self, name, int(v))
        if not 1 <= self.n <= self.m <= NM_MAX_M:
            raise ValueError(f"NM(n, m) needs 1 <= n <= m <= {NM_MAX_M}, got n={self.n}, "
                             f"m={self.m}")

    def __repr__(self) -> str:
        return f"NM({self.n}, {self.m})"


def read_scope(op: str, amount, scope, deprecated: Mapping[str, object],
               stacklevel: int = 3) -> Optional[NM]:
    """The N:M rule a front door's call asks for, or None for a ranking (scope 'global' or
    'layer', which then needs an amount; lth_fast.ops.amounts reads it).

    deprecated: the keyword arguments the front door collected besides its own, which may only
    be the old n= and m=. scope="nm" (with n=, m=, defaulting to 2 and 4) still works, for one
    release, with a DeprecationWarning naming the NM(n, m) to write; stacklevel points the
    warning at the front door's caller. Raises TypeError / ValueError, one line, for an unknown
    keyword, a bad n or m, an amount given with an N:M rule, or a scope that is none of these."""
    if deprecated:
        unknown = sorted(set(deprecated) - {"n", "m"})
        if unknown:
            raise TypeError(f"{op}() got an unexpected keyword argument {unknown[0]!r}")
    if isinstance(scope, NM):
        if deprecated:
            raise ValueError(f"{op}: n and m are given by scope={scope!r}, not as n=/m= too")
        rule = scope
    elif scope == "nm":
        n, m = deprecated.get("n", _OLD_DEFAULT[0]), deprecated.get("m", _OLD_DEFAULT[1])
        warnings.warn(f"{op}(scope='nm', n={n!r}, m={m!r}) is deprecated and goes in the next "
                      f"release; write scope=lth_fast.NM({n!r}, {m!r})", DeprecationWarning,
                      stacklevel=stacklevel)
        rule = NM(n, m)
    elif isinstance(scope, str) and scope in RANKINGS:
        if deprecated:
            n, m = deprecated.get("n", _OLD_DEFAULT[0]), deprecated.get("m", _OLD_DEFAULT[1])
            if (n, m) != _OLD_DEFAULT:
                raise ValueError(f"{op}: n and m are for an N:M rule; scope={scope!r} takes an "
                                 f"amount (for N:M write scope=lth_fast.NM(n, m))")
            warnings.warn(f"{op}: n= and m= are deprecated and a ranking ignores them; drop "
                          f"them", DeprecationWarning, stacklevel=stacklevel)
        return None
    else:
        raise ValueError(f"{op}: scope must be 'global', 'layer' or lth_fast.NM(n, m), got "
                         f"{scope!r}")
    if amount is not None:
        raise ValueError(f"{op}: an N:M rule (scope={rule!r}) takes no amount, got {amount!r}")
    return rule
