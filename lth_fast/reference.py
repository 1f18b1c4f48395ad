"""lth_fast.reference: the executable spec (lth_fast.ops.reference), under its public name."""
from .ops.reference import (adam_step_, mask_distance, mask_distance_counts, masked_adam_,
                            masked_sgd_, nm_select_, prune_, rewind_, select_)

__all__ = ["prune_", "select_", "nm_select_", "masked_sgd_", "masked_adam_", "adam_step_",
           "rewind_", "mask_distance", "mask_distance_counts"]
