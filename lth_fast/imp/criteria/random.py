"""random: seeded uniform scores, so random pruning is the same exact selection as magnitude
pruning, run on scores drawn from the criterion's own stream. The scores of a whole tensor are
drawn on the CPU, so they are the same on every device and for every sharding."""
from __future__ import annotations

import torch

from .base import CRITERIA, Criterion


def scores(ctx):
    gen = torch.Generator().manual_seed(ctx.seed)
    model = ctx.pruner.model
    return {n: torch.rand(model.get_parameter(n).shape, generator=gen).to(ctx.device)
            for n in ctx.pruner.names}


CRITERIA.register(Criterion("random", scores=scores))
