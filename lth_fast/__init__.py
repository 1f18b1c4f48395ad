"""lth_fast: fused multi-tensor kernels for finding lottery tickets fast."""
from . import reference
from .ops import cpu_isa, masked_adam_, masked_sgd_, prune_, rewind_
from .optim import MaskedSGD
from .optim_adam import MaskedAdam
from .pruner import Pruner
from .stats import PruneStats

__version__ = "0.1.0"
__all__ = ["prune_", "masked_sgd_", "masked_adam_", "rewind_", "cpu_isa", "PruneStats",
           "reference", "MaskedSGD", "MaskedAdam", "Pruner", "__version__"]
