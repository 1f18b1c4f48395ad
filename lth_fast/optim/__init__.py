"""Drop-in masked optimizers: subclasses of torch's SGD, Adam and AdamW that keep pruned weights
and their optimizer state at exactly 0, through one fused pass per step."""
from .adam import MaskedAdam, MaskedAdamW
from .masked import MaskedOptimizer
from .sgd import MaskedSGD

__all__ = ["MaskedSGD", "MaskedAdam", "MaskedAdamW", "MaskedOptimizer"]
