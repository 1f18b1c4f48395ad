"""Lightning's ModelPruning with its L1 and random unstructured pruning, global and local, on the
fused selection (lth_fast.nn.utils.prune). Change one import:

    from lth_fast.integrations.lightning import ModelPruning   # was: lightning.pytorch.callbacks

The constructor and behaviour are Lightning's: `parameters_to_prune`, callable `amount` and
`apply_pruning`, `use_lottery_ticket_hypothesis` (bool or callable), `resample_parameters`,
`make_pruning_permanent`, `verbose`, checkpoints. Structured methods and a custom
BasePruningMethod run Lightning's and torch's own code. The masks are torch's (float
`<name>_mask` buffers, `<name>_orig` parameters), equal to Lightning's on tie-free weights.

Lightning's lottery-ticket option copies the original weights back; it does not rewind the
optimizer, the learning-rate schedule, biases or norms. LotteryTicket
(lth_fast.integrations.lightning) does all of that and keeps bool masks."""
from __future__ import annotations

from lightning.pytorch.callbacks import ModelPruning as _LightningModelPruning

from ..nn.utils import prune as _prune

# Lightning's names for the methods that have a fused selection
_FUNCTIONS = {"l1_unstructured": _prune.l1_unstructured,
              "random_unstructured": _prune.random_unstructured}
_METHODS = {"l1_unstructured": _prune.L1Unstructured,
            "random_unstructured": _prune.RandomUnstructured}


class ModelPruning(_LightningModelPruning):
    """lightning.pytorch.callbacks.ModelPruning (same arguments), whose l1_unstructured and
    random_unstructured run on the fused selection, globally and per tensor."""

    def _create_pruning_fn(self, pruning_fn: str, **kwargs):
        # Lightning's own first: it records the method's name and the global keyword arguments
        fn = super()._create_pruning_fn(pruning_fn, **kwargs)
        if pruning_fn not in _FUNCTIONS:
            return fn
        if self._use_global_unstructured:
            return _METHODS[pruning_fn]
        return self._wrap_pruning_fn(_FUNCTIONS[pruning_fn], **kwargs)

    def _apply_global_pruning(self, amount) -> None:
        _prune.global_unstructured(self._parameters_to_prune, pruning_method=self.pruning_fn,
                                   **self._resolve_global_kwargs(amount))
