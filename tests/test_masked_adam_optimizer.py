"""MaskedAdam == torch.optim.Adam followed by masking the weights and both moments, over 300
steps of a small MLP with several param groups, weight decay, maximize and a StepLR schedule;
pruned entries exactly 0 after every step; without masks bit for bit torch.optim.Adam;
state_dicts interchangeable with torch.optim.Adam's; deepcopy keeps the masks.

Tolerance rtol 1e-5 / atol 1e-6 (float32): the fused step differs from torch's by an ulp or
so of the update term (torch's float32 sqrt is not correctly rounded), and 300 steps of a
contracting optimisation keep that at the 1e-7 level in practice (measured: < 2e-7 abs)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lth_fast import MaskedAdam, Pruner
from op_helpers import one_thread  # noqa: F401
from training_helpers import (_run, assert_pruned_zero, batches, groups, lockstep, mask_, mlp,
                              random_masks)

STEPS = 300
TOL = dict(rtol=1e-5, atol=1e-6)
MOMENTS = ("exp_avg", "exp_avg_sq")

CONFIGS = {
    "plain": [dict()] * 3,
    "weight-decay": [dict(weight_decay=1e-2)] * 3,
    "mixed-groups": [dict(weight_decay=1e-3, lr=3e-3),
                     dict(betas=(0.8, 0.99), eps=1e-6),
                     dict(betas=(0.3, 0.9), maximize=True, lr=1e-4)],
    "maximize": [dict(maximize=True, weight_decay=1e-3)] * 3,
}


def train_pair(config, gen, steps=STEPS, masked=True, grad_none_at=10):
    """Runs MaskedAdam and Adam+masking side by side; compares after every step."""
    ref_model, model = mlp(), mlp()
    masks = random_masks(model, gen) if masked else {}
    opt = MaskedAdam(groups(model, CONFIGS[config]), lr=1e-2, masks=masks or None)
    ref = torch.optim.Adam(groups(ref_model, CONFIGS[config]), lr=1e-2, foreach=False)
    lockstep((model, opt), (ref_model, ref), masks, steps, TOL, MOMENTS, grad_none_at,
             sched_every=60)
    return model, opt, ref_model, ref


@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_adam_then_mask(config, gen):
    _, opt, _, ref = train_pair(config, gen)
    assert len(opt.state) == len(ref.state)
    for s, rs in zip(opt.state.values(), ref.state.values()):
        assert s["step"].dtype == rs["step"].dtype and torch.equal(s["step"], rs["step"])
        for key in MOMENTS:
            torch.testing.assert_close(s[key], rs[key], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("config", ["mixed-groups", "weight-decay"])
def test_without_masks_is_exactly_adam(config, gen):
    model, _, ref_model, _ = train_pair(config, gen, steps=60, masked=False)
    for p, rp in zip(model.parameters(), ref_model.parameters()):
        assert torch.equal(p, rp)


def test_state_dict_round_trip(gen):
    model = mlp()
    masks = random_masks(model, gen)
    opt = MaskedAdam(groups(model, CONFIGS["mixed-groups"]), lr=1e-2, masks=masks)
    _run(model, opt, batches(30))
    model2 = copy.deepcopy(model)
    masks2 = {p2: masks[p] for p, p2 in zip(model.parameters(), model2.parameters()) if p in masks}
    opt2 = MaskedAdam(groups(model2, CONFIGS["mixed-groups"]), lr=1e-2, masks=masks2)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    data = batches(20, seed=5)
    _run(model, opt, data)
    _run(model2, opt2, data)
    for p, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, p2)


@pytest.mark.parametrize("direction", ["adam->masked", "masked->adam"])
def test_state_dict_interchangeable_with_adam(direction, gen):
    cfg = dict(lr=1e-2, betas=(0.85, 0.995), weight_decay=1e-3)
    model = mlp()
    masks = random_masks(model, gen)
    first = (torch.optim.Adam(model.parameters(), **cfg) if direction == "adam->masked"
             else MaskedAdam(model.parameters(), masks=masks, **cfg))
    _run(model, first, batches(10))
    mask_(list(masks.items()), first, MOMENTS)
    sd = copy.deepcopy(first.state_dict())
    ref_model = copy.deepcopy(model)
    second = (MaskedAdam(model.parameters(), masks=masks, lr=1.0) if direction == "adam->masked"
              else torch.optim.Adam(model.parameters(), lr=1.0))
    assert sd["param_groups"][0].keys() == second.state_dict()["param_groups"][0].keys()
    second.load_state_dict(copy.deepcopy(sd))
    assert second.param_groups[0]["lr"] == 1e-2
    ref_masks = [(rp, masks[p]) for rp, p in zip(ref_model.parameters(), model.parameters())
                 if p in masks]
    ref = torch.optim.Adam(ref_model.parameters(), **cfg)
    ref.load_state_dict(copy.deepcopy(sd))
    for x, y in batches(10, seed=7):
        for o, mdl in ((second, model), (ref, ref_model)):
            o.zero_grad()
            nn.functional.mse_loss(mdl(x), y).backward()
            o.step()
        mask_(ref_masks, ref, MOMENTS)
        if direction == "masked->adam":
            mask_(list(masks.items()), second, MOMENTS)
    for p, rp in zip(model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, rp, **TOL)


def test_deepcopy_keeps_the_masks(gen):
    model = mlp()
    masks = random_masks(model, gen)
    opt = MaskedAdam(model.parameters(), lr=1e-2, masks=masks)
    _run(model, opt, batches(2))
    model2, opt2 = copy.deepcopy((model, opt))
    data = batches(3, seed=4)
    _run(model, opt, data)
    _run(model2, opt2, data)
    for p, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, p2)
    assert len(opt2._masks_now()) == len(masks)
    assert_pruned_zero(opt2._masks_now(), opt2, "copy", MOMENTS)


def test_pruner_masks_and_channels_last(gen):
    """Masks read live from a Pruner; non-contiguous params keep their memory format."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    model = model.to(memory_format=torch.channels_last)
    pruner = Pruner(model)
    opt = MaskedAdam(model.parameters(), lr=1e-2, masks=pruner)
    for i in range(4):
        if i == 1:
            pruner.prune(0.5)
        opt.zero_grad()
        x = torch.randn(2, 3, 9, 9, generator=gen).to(memory_format=torch.channels_last)
        model(x).square().mean().backward()
        opt.step()
        assert_pruned_zero(pruner.param_masks(), opt, f"step {i}", MOMENTS)
    assert not model[0].weight.is_contiguous()
    assert not opt.state[model[0].weight]["exp_avg"].is_contiguous()


@pytest.mark.parametrize("kw,error", [(dict(amsgrad=True), NotImplementedError),
                                      (dict(capturable=True), NotImplementedError),
                                      (dict(differentiable=True), ValueError),
                                      (dict(betas=(1.0, 0.9)), ValueError),
                                      (dict(eps=-1.0), ValueError),
                                      (dict(lr=-1.0), ValueError),
                                      (dict(weight_decay=-1.0), ValueError)])
def test_unsupported_and_bad_options(kw, error):
    with pytest.raises(error):
        MaskedAdam(mlp().parameters(), **kw)


def test_loaded_amsgrad_state_dict_is_refused():
    model = mlp()
    opt = MaskedAdam(model.parameters())
    opt.load_state_dict(torch.optim.Adam(model.parameters(), amsgrad=True).state_dict())
    with pytest.raises(NotImplementedError, match="amsgrad"):
        opt.step()
