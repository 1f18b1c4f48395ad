"""grasp and grasp_abs: Gradient Signal Preservation (Wang, Zhang & Grosse, ICLR 2020, "Picking
Winning Tickets Before Training by Preserving Gradient Flow"), and its magnitude variant, which
Frankle, Dziugaite, Roy & Carbin (ICLR 2021, "Pruning Neural Networks at Initialization: Why
Are We Missing the Mark?") found to work better.

    g = ∇L,  Hg = ∇(stop_grad(g) · ∇L)     (a Hessian-gradient product, two backward passes)
    grasp:      S = -w ⊙ Hg, the entries with the LARGEST S are pruned (removing them reduces
                the gradient norm least, or increases it: the paper's and its code's sign)
    grasp_abs:  |w ⊙ Hg|, the smallest are pruned

L is the mean cross-entropy of the outputs divided by the temperature T = 200 (the original
code's), over the example set of inputs.examples, on a copy of the network in train mode.

The fused prune_ removes the smallest |score|, so grasp hands it max(S) - S, computed in
float64 with one max over every pruned tensor: non-negative, 0 at the largest S, and in S's
order within a tensor and across tensors, so a global and a per-layer ranking both remove the
largest S first. (Two S closer than float64 resolves relative to max(S) - S become a tie, which
goes to the earlier position.)

What differs from the reference code (alecwangcq/GraSP): it re-initialises the Linear layers
(Xavier normal) before scoring, sums the gradients of two halves of the examples (a positive
factor on g and Hg: the same ranking), divides the scores by |sum| (the same), and keeps the
entries with S <= the k-th largest S, so ties at the threshold keep more than asked; here the
network is scored as the run built it, exactly k entries go, ties to the earlier position, and
attention runs on PyTorch's math kernel while scoring (the fused CPU attention has no second
derivative)."""
from __future__ import annotations

import torch
from torch import nn

from .base import CRITERIA, Criterion
from .inputs import examples, mean_loss, scratch

TEMPERATURE = 200.0


class Tempered(nn.Module):
    """The model with its outputs divided by the temperature."""

    def __init__(self, model: nn.Module, t: float) -> None:
        super().__init__()
        self.model, self.t = model, t

    def forward(self, x):
        return self.model(x) / self.t


def hessian_gradient(ctx):
    """(the pruned weights of the scoring copy, Hg for each)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model, params = scratch(ctx, train=True)
    tempered = Tempered(model, TEMPERATURE)
    batches = examples(ctx)
    with sdpa_kernel(SDPBackend.MATH):
        g = [torch.zeros_like(p) for p in params]
        for loss in mean_loss(ctx, tempered, batches):
            for a, d in zip(g, torch.autograd.grad(loss, params)):
                a += d
        hg = [torch.zeros_like(p) for p in params]
        for loss in mean_loss(ctx, tempered, batches):
            grads = torch.autograd.grad(loss, params, create_graph=True)
            z = sum((a * d).sum() for a, d in zip(g, grads))
            for h, d in zip(hg, torch.autograd.grad(z, params)):
                h += d
    return params, hg


def scores(ctx):
    params, hg = hessian_gradient(ctx)
    s = [(-p.detach() * h).double() for p, h in zip(params, hg)]
    top = max(x.max() for x in s if x.numel()) if any(x.numel() for x in s) else 0.0
    return {n: top - x for n, x in zip(ctx.pruner.names, s)}


def abs_scores(ctx):
    params, hg = hessian_gradient(ctx)
    return {n: (p.detach() * h).abs() for n, p, h in zip(ctx.pruner.names, params, hg)}


CRITERIA.register(Criterion("grasp", scores=scores, reads=("examples",)))
CRITERIA.register(Criterion("grasp_abs", scores=abs_scores, reads=("examples",)))
