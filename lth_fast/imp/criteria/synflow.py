"""synflow: Iterative Synaptic Flow Pruning (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020,
"Pruning neural networks without any data by iteratively conserving synaptic flow").

    R = 1ᵀ f(1; |θ|)          the sum of the outputs of the network with every parameter and
                              buffer replaced by its absolute value, on an all-ones input
    score(w) = |w ⊙ ∂R/∂w|    (w = |w| in that network; the absolute value only matters where
                              a layer is not positively homogeneous)

Iterative: `ctx.rounds` rounds (100 by default), re-scoring after each, the alive count
following an exponential schedule of the density to the selection's (criteria/rounds.py);
every round is the fused selection of an exact count, ties to the earlier position.

The network is scored as a copy in eval mode, so BatchNorm applies its running statistics
(their absolute values: mean 0 and variance 1 at initialisation, so it is the positive affine
map x -> |γ| x / sqrt(1 + eps) + |β|) and does not read the one input's batch statistics. A
language model's token input is the all-ones one-hot vector at every position of its context:
the token embedding returns the sum of its (absolute) rows there, and the position embedding
is read as usual (criteria/inputs.all_ones). LayerNorm, softmax attention and GELU are not
positively homogeneous, so Tanaka et al.'s conservation argument does not hold for a GPT: the
scores are still |w ⊙ ∂R/∂w| of that network.

float64 (ctx.float64, --synflow-float64): the copy, its input and the scores are float64. R is
a sum of products of |w| along every path, which in float32 overflows or underflows for deep or
very sparse networks, turning scores into inf or 0 (ties, or NaN that the selection refuses);
float64's range (1e±308) and 53-bit mantissa keep them finite and distinct much longer.

What differs from the reference code (ganguli-lab/Synaptic-Flow): it keeps every entry whose
score is above the k-th smallest of one concatenated vector (torch.kthvalue, `score <=
threshold` pruned), so ties and scores that underflow to 0 prune more than scheduled (its issue
12); it scores the masked copy as its own model in place (abs, then the signs restored); its
float64 line is commented out. Here each round prunes exactly the scheduled count from a copy,
and the pruned entries are 0 in it, as they are in the reference's masked layers."""
from __future__ import annotations

import torch

from .base import CRITERIA, Criterion
from .inputs import all_ones, scratch
from .rounds import selections


def _absolute(ctx):
    """The scoring copy: eval mode, every floating parameter and buffer |x|."""
    model, params = scratch(ctx, train=False, dtype=torch.float64 if ctx.float64 else None)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.abs_()
    return model, params


def _round(ctx, model, params):
    """One round's scores on the copy, after the pruner's current masks are applied to it."""
    with torch.no_grad():
        for p, n in zip(params, ctx.pruner.names):
            p.mul_(ctx.pruner.masks[n].to(p.device))
    dtype = params[0].dtype if params else torch.float32
    with all_ones(ctx, model, dtype) as x:
        r = model(x).sum()
    grads = torch.autograd.grad(r, params, allow_unused=True)
    return {n: (torch.zeros_like(p) if g is None else (g * p).abs()).detach()
            for n, g, p in zip(ctx.pruner.names, grads, params)}


def scores(ctx):
    """One round at the current masks."""
    model, params = _absolute(ctx)
    return _round(ctx, model, params)


def rounds(ctx, selection):
    model, params = _absolute(ctx)
    stats = None
    for step in selections(ctx.pruner, selection, max(ctx.rounds, 1)):
        stats = ctx.pruner.prune(**step, scores=_round(ctx, model, params))
    return stats


CRITERIA.register(Criterion("synflow", scores=scores, rounds=rounds,
                            reads=("rounds", "float64")))
