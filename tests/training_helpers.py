"""Models, data and checks shared by the MaskedSGD, MaskedAdam and Pruner tests."""
from __future__ import annotations

import torch
from torch import nn


# -- a small MLP for the optimizer tests -----------------------------------------------------
def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(),
                         nn.Linear(16, 3))


def random_masks(model, gen, alive_p=0.5):
    """{param: mask} for the weights (2-D params); biases stay unmasked."""
    return {p: torch.rand(p.shape, generator=gen) < alive_p
            for p in model.parameters() if p.dim() > 1}


def batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 12, generator=g), torch.randn(16, 3, generator=g))
            for _ in range(n)]


def groups(model, spec):
    """One param group per layer of `spec` (a list of option dicts, one per Linear)."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    return [dict(params=list(m.parameters()), **opts) for m, opts in zip(linears, spec)]


def mask_(params_and_masks, optimizer, keys=("momentum_buffer",)):
    """What a reference run does after each step: zero the pruned weights and the pruned
    entries of the optimizer's state tensors `keys` (SGD's buffer; Adam's two moments)."""
    with torch.no_grad():
        for p, m in params_and_masks:
            p.masked_fill_(~m, 0)
            for key in keys:
                t = optimizer.state.get(p, {}).get(key)
                if t is not None:
                    t.masked_fill_(~m, 0)


def assert_pruned_zero(model_masks, optimizer, where, keys=("momentum_buffer",)):
    for p, m in model_masks.items():
        assert (p[~m] == 0).all(), f"{where}: a pruned weight is not 0"
        for key in keys:
            t = optimizer.state.get(p, {}).get(key)
            if t is not None:
                assert (t[~m] == 0).all(), f"{where}: a pruned {key} entry is not 0"


def lockstep(pair, ref_pair, masks, steps, tol, keys, grad_none_at=10, sched_every=50):
    """Trains (model, masked optimizer) and (ref_model, torch optimizer + mask_ after each step)
    on the same batches with a StepLR each, both pruned at the start, comparing the weights
    after every step. At step `grad_none_at` two params lose their gradient (both optimizers
    must skip them)."""
    (model, opt), (ref_model, ref) = pair, ref_pair
    ref_masks = [(rp, masks[p]) for rp, p in zip(ref_model.parameters(), model.parameters())
                 if p in masks]
    mask_(list(masks.items()), opt, keys)  # both start pruned
    mask_(ref_masks, ref, keys)
    scheds = [torch.optim.lr_scheduler.StepLR(o, step_size=sched_every, gamma=0.5)
              for o in (opt, ref)]
    for step, (x, y) in enumerate(batches(steps)):
        for o, mdl in ((opt, model), (ref, ref_model)):
            o.zero_grad()
            nn.functional.mse_loss(mdl(x), y).backward()
            if step == grad_none_at:
                mdl[2].bias.grad = None
                mdl[4].weight.grad = None
        opt.step()
        ref.step()
        mask_(ref_masks, ref, keys)
        for s in scheds:
            s.step()
        assert_pruned_zero(masks, opt, f"step {step}", keys)
        for i, (p, rp) in enumerate(zip(model.parameters(), ref_model.parameters())):
            torch.testing.assert_close(p, rp, **tol, msg=lambda m: f"step {step} param {i}: {m}")
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref.param_groups]


def _run(model, opt, data):
    for x, y in data:
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


# -- a model with every kind of layer for the pruner tests -----------------------------------
class Net(nn.Module):
    """Conv, norm, linear and embedding layers, a tied parameter, an odd-sized output layer."""

    def __init__(self, seed=0, hidden=24):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.Conv2d(6, 5, 3), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(5 * 4 * 4, hidden), nn.ReLU(),
                                        nn.LayerNorm(hidden), nn.Linear(hidden, 7))
        self.embed = nn.Embedding(10, 4)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


ALL = ["features.0.weight", "features.3.weight", "classifier.0.weight", "classifier.3.weight"]


def data(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 7, (8,), generator=g))
            for _ in range(n)]


def train(model, opt, n=4, seed=1, after_step=None):
    for x, y in data(n, seed):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if after_step:
            after_step()


def weights(pruner):
    return [pruner.model.get_parameter(n).detach().clone() for n in pruner.names]


# -- selection -------------------------------------------------------------------------------
