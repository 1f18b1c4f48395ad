"""snip: connection sensitivity (Lee, Ajanthan & Torr, ICLR 2019, "SNIP: Single-shot Network
Pruning based on Connection Sensitivity").

    score(w) = |w ⊙ ∂L/∂w| = |∂L/∂m| at m = 1, where the network uses m ⊙ w,

L being the mean training loss over a fixed set of examples (inputs.examples: ctx.examples per
class for a classifier, the first ctx.examples training batches for a language model), on a
copy of the network in train mode. The smallest scores are pruned, exactly k of them, ties to
the earlier position (the fused prune_).

What differs from the reference code (namhoonlee/snip-public, TensorFlow): it scores one
minibatch and the biases too, normalises the scores by their sum (a positive factor: no change
in the ranking) and keeps the top-k of one concatenated vector; here only the run's pruned
tensors are scored, over the chosen example set (in chunks whose gradients sum to the mean's),
ranked per layer or globally as the run's rule says."""
from __future__ import annotations

import torch

from .base import CRITERIA, Criterion
from .inputs import examples, mean_loss, scratch


def scores(ctx):
    model, params = scratch(ctx, train=True)
    grads = [torch.zeros_like(p) for p in params]
    for loss in mean_loss(ctx, model, examples(ctx)):
        for g, d in zip(grads, torch.autograd.grad(loss, params)):
            g += d
    return {n: (g * p).detach().abs() for n, g, p in zip(ctx.pruner.names, grads, params)}


CRITERIA.register(Criterion("snip", scores=scores, reads=("examples",)))
