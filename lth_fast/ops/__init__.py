"""The ops: prune_, masked_sgd_, masked_adam_, rewind_ and mask_distance (semantics:
docs/semantics.md).

api        the front door: typed functions over torch.ops.lth_fast.*
library    loads lth_fast._C; fakes for torch.compile; the reference as the default kernel
reference  the executable spec in pure PyTorch (imports without lth_fast._C)
checks     argument checks (the twins of csrc/common); amounts: how an amount is read;
nm         NM(n, m), the N:M rule as a scope, and the reading of a front door's scope;
stats      what a pruning call did; distance: what mask_distance returns and reads;
           dtensors: FSDP2 shards at the front door

Without a built lth_fast._C only reference, checks, amounts, nm and stats are importable, and
BUILD_ERROR says why."""
from .distance import MaskDistance
from .nm import NM
from .stats import PruneStats

try:
    from . import library
except ModuleNotFoundError as e:
    if e.name != "lth_fast._C":
        raise
    BUILD_ERROR = e
else:
    BUILD_ERROR = None
    from .api import (cpu_isa, mask_distance, masked_adam_, masked_sgd_, prune_, prune_raw,
                      rewind_, zero_pruned)
    from .library import has_fused_kernel
