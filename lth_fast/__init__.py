"""lth_fast: fused multi-tensor kernels for finding lottery tickets fast.

lth_fast.ops (prune_, masked_sgd_, masked_adam_, rewind_, mask_distance; NM(n, m), the N:M
rule as prune_'s scope), lth_fast.pruning (Pruner, EarlyBird), lth_fast.shipping
(load_exported), lth_fast.optim (MaskedSGD, MaskedAdam, MaskedAdamW), lth_fast.imp (the IMP
driver), lth_fast.bench; lth_fast.reference is the pure-PyTorch spec, importable without the
compiled extension lth_fast._C."""
from . import ops, reference
from ._version import __version__
from .ops import NM, MaskDistance, PruneStats

__all__ = ["prune_", "masked_sgd_", "masked_adam_", "rewind_", "mask_distance", "cpu_isa",
           "NM", "PruneStats", "MaskDistance",
           "reference", "MaskedSGD", "MaskedAdam", "MaskedAdamW", "Pruner", "EarlyBird",
           "load_exported",
           "__version__"]

if ops.BUILD_ERROR is None:
    from .ops import cpu_isa, mask_distance, masked_adam_, masked_sgd_, prune_, rewind_
    from .optim import MaskedAdam, MaskedAdamW, MaskedSGD
    from .pruning import EarlyBird, Pruner
    from .shipping import load_exported
else:
    def __getattr__(name: str):
        if name in __all__:
            raise ImportError(f"lth_fast.{name} needs the compiled extension lth_fast._C, which "
                              f"is not built ({ops.BUILD_ERROR}); pip install -e . builds it")
        raise AttributeError(f"module 'lth_fast' has no attribute {name!r}")
