"""MaskedAdam == torch.optim.Adam followed by masking the weights and both moments: 300 steps
of a small MLP with several param groups, weight decay, maximize and a StepLR schedule, each
step compared with torch's from the same state; pruned entries exactly 0 after every step;
without masks bit for bit torch.optim.Adam; state_dicts interchangeable with torch.optim.Adam's;
deepcopy keeps the masks.

One step's tolerance: 4 ulp of |old| + |new| (the update term is at most that large): the fused
step differs from torch's by an ulp or so of the update term (torch's float32 sqrt is up to 1.5
ulp off; ours is correctly rounded), which goes through two more roundings. Longer runs are
compared with a looser tolerance only where a test needs unsynced runs (state_dict loading)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lth_fast import MaskedAdam, MaskedAdamW, Pruner

from tests.helpers.ops import one_thread  # noqa: F401
from tests.helpers.training import (_run, adam_weight_scale, assert_pruned_zero, batches,
                                    check_deepcopy_keeps_the_masks, check_state_dict_round_trip,
                                    exactly_like_torch, groups, lockstep, mask_, mlp, weight_masks)

STEPS = 300
ULPS = 4
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 after a few unsynced steps (state_dict tests)
MOMENTS = ("exp_avg", "exp_avg_sq")

CONFIGS = {
    "plain": [dict()] * 3,
    "weight-decay": [dict(weight_decay=1e-2)] * 3,
    "mixed-groups": [dict(weight_decay=1e-3, lr=3e-3),
                     dict(betas=(0.8, 0.99), eps=1e-6),
                     dict(betas=(0.3, 0.9), maximize=True, lr=1e-4)],
    "maximize": [dict(maximize=True, weight_decay=1e-3)] * 3,
    "amsgrad": [dict(amsgrad=True, weight_decay=1e-3)] * 3,
    "decoupled": [dict(decoupled_weight_decay=True, weight_decay=1e-2),
                  dict(decoupled_weight_decay=True, weight_decay=1e-1, amsgrad=True),
                  dict(weight_decay=1e-2, maximize=True)],
}
MOMENTS_AMS = MOMENTS + ("max_exp_avg_sq",)


def train_pair(config, gen, steps=STEPS, masked=True, grad_none_at=10):
    """Runs MaskedAdam and Adam+masking side by side; compares after every step."""
    ref_model, model = mlp().double() if masked else mlp(), mlp()
    masks = weight_masks(model, gen) if masked else {}
    opt = MaskedAdam(groups(model, CONFIGS[config]), lr=1e-2, masks=masks or None)
    ref = torch.optim.Adam(groups(ref_model, CONFIGS[config]), lr=1e-2, foreach=False)
    if masked:
        lockstep((model, opt), (ref_model, ref), masks, steps, ULPS, MOMENTS_AMS,
                 adam_weight_scale, grad_none_at, sched_every=60)
    else:
        exactly_like_torch((model, opt), (ref_model, ref), steps, MOMENTS_AMS)
    return model, opt, ref_model, ref


def groups_params(opt):
    return [p for g in opt.param_groups for p in g["params"] if p in opt.state]


@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_adam_then_mask(config, gen):
    _, opt, _, ref = train_pair(config, gen)
    assert len(opt.state) == len(ref.state)
    for p, rp in zip(groups_params(opt), groups_params(ref)):
        s, rs = opt.state[p], ref.state[rp]
        assert s["step"].dtype == rs["step"].dtype and torch.equal(s["step"], rs["step"])


@pytest.mark.parametrize("config", ["mixed-groups", "weight-decay", "decoupled"])
def test_without_masks_is_exactly_adam(config, gen):
    train_pair(config, gen, steps=60, masked=False)


def test_state_dict_round_trip(gen):
    check_state_dict_round_trip(lambda ps, m: MaskedAdam(ps, lr=1e-2, masks=m),
                                CONFIGS["mixed-groups"], gen)


@pytest.mark.parametrize("direction", ["adam->masked", "masked->adam"])
def test_state_dict_interchangeable_with_adam(direction, gen):
    cfg = dict(lr=1e-2, betas=(0.85, 0.995), weight_decay=1e-3)
    model = mlp()
    masks = weight_masks(model, gen)
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


@pytest.mark.parametrize("cls", [MaskedAdam, MaskedAdamW])
def test_deepcopy_keeps_the_masks(cls, gen):
    check_deepcopy_keeps_the_masks(lambda ps, m: cls(ps, lr=1e-2, masks=m), gen, MOMENTS)


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


@pytest.mark.parametrize("kw,error", [(dict(capturable=True), NotImplementedError),
                                      (dict(differentiable=True), ValueError),
                                      (dict(betas=(1.0, 0.9)), ValueError),
                                      (dict(eps=-1.0), ValueError),
                                      (dict(lr=-1.0), ValueError),
                                      (dict(weight_decay=-1.0), ValueError)])
def test_unsupported_and_bad_options(kw, error):
    with pytest.raises(error):
        MaskedAdam(mlp().parameters(), **kw)


def test_loaded_capturable_state_dict_is_refused():
    model = mlp()
    opt = MaskedAdam(model.parameters())
    opt.load_state_dict(torch.optim.Adam(model.parameters(), capturable=True).state_dict())
    with pytest.raises(NotImplementedError, match="capturable"):
        opt.step()


def test_adamw_is_adam_with_decoupled_decay(gen):
    """MaskedAdamW and MaskedAdam(decoupled_weight_decay=True) take the same steps."""
    runs = []
    for make in (lambda ps, m: MaskedAdamW(ps, lr=1e-2, weight_decay=0.1, masks=m),
                 lambda ps, m: MaskedAdam(ps, lr=1e-2, weight_decay=0.1, masks=m,
                                          decoupled_weight_decay=True)):
        model = mlp()
        masks = weight_masks(model, torch.Generator().manual_seed(3))
        _run(model, make(model.parameters(), masks), batches(15))
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs):
        assert torch.equal(a, b)
