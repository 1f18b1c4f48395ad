"""MaskedSGD == torch.optim.SGD followed by masking the weights and momentum buffers: 200+
steps of a small MLP with every SGD option, several param groups and a StepLR schedule, each
step compared with torch's from the same state (within 2 ulp of |old| + |new|); pruned entries
exactly 0 after every step; without masks bit for bit SGD; state_dicts interchangeable with
torch.optim.SGD's."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lth_fast import MaskedSGD

from tests.helpers.ops import one_thread  # noqa: F401
from tests.helpers.targets import needs_cuda
from tests.helpers.training import (_run, assert_pruned_zero, batches,
                                    check_state_dict_round_trip, exactly_like_torch, groups,
                                    lockstep, mask_, mlp, sgd_weight_scale, weight_masks)

STEPS = 220
ULPS = 4  # one step's difference from the float64 step: a few roundings (helpers.training)
TOL = dict(rtol=1e-5, atol=1e-6)  # float32 after a few unsynced steps (state_dict tests)

CONFIGS = {
    "plain": [dict()] * 3,
    "momentum-dampening-wd": [dict(momentum=0.9, dampening=0.1, weight_decay=1e-3)] * 3,
    "nesterov": [dict(momentum=0.9, nesterov=True, weight_decay=5e-4)] * 3,
    "mixed-groups": [dict(momentum=0.9, dampening=0.2, weight_decay=1e-2, lr=0.02),
                     dict(momentum=0.8, nesterov=True),
                     dict(momentum=0.5, maximize=True, lr=1e-3)],
    "maximize": [dict(momentum=0.9, maximize=True, lr=1e-3)] * 3,
}


def train_pair(config, gen, steps=STEPS, masked=True, grad_none_at=10):
    """Runs MaskedSGD and SGD+masking side by side; compares after every step."""
    ref_model, model = mlp().double() if masked else mlp(), mlp()
    masks = weight_masks(model, gen) if masked else {}
    opt = MaskedSGD(groups(model, CONFIGS[config]), lr=0.05, masks=masks or None)
    ref = torch.optim.SGD(groups(ref_model, CONFIGS[config]), lr=0.05)
    if masked:
        lockstep((model, opt), (ref_model, ref), masks, steps, ULPS, ("momentum_buffer",),
                 sgd_weight_scale, grad_none_at)
    else:
        exactly_like_torch((model, opt), (ref_model, ref), steps, ("momentum_buffer",))
    return model, opt, ref_model, ref


@pytest.mark.parametrize("config", list(CONFIGS))
def test_matches_sgd_then_mask(config, gen):
    _, opt, _, ref = train_pair(config, gen)
    assert len(opt.state) == len(ref.state)


@pytest.mark.parametrize("config", ["mixed-groups", "nesterov"])
def test_without_masks_is_exactly_sgd(config, gen):
    train_pair(config, gen, steps=60, masked=False)


def test_buckets_by_dtype_and_first_step(gen):
    """Params of two dtypes in one group, one of them getting its first gradient late: each
    (dtype, first step) bucket is one fused call with the right init_buffers."""
    shapes = [(5, 4), (70,), (3, 3)]
    dtypes = [torch.float32, torch.float64, torch.float32]
    ps = [torch.randn(s, generator=gen, dtype=d, requires_grad=True)
          for s, d in zip(shapes, dtypes)]
    rps = [p.detach().clone().requires_grad_() for p in ps]
    ms = [torch.rand(s, generator=gen) < 0.5 for s in shapes]
    with torch.no_grad():  # both start pruned
        for p, rp, m in zip(ps, rps, ms):
            p.masked_fill_(~m, 0)
            rp.masked_fill_(~m, 0)
    opt = MaskedSGD(ps, lr=0.1, momentum=0.9, dampening=0.3, masks=dict(zip(ps, ms)))
    ref = torch.optim.SGD(rps, lr=0.1, momentum=0.9, dampening=0.3)
    for step in range(6):
        for i, (p, rp) in enumerate(zip(ps, rps)):
            g = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            p.grad = None if (i == 2 and step < 3) else g
            rp.grad = None if p.grad is None else g.clone()
        opt.step()
        ref.step()
        mask_(list(zip(rps, ms)), ref)
        for p, rp in zip(ps, rps):
            torch.testing.assert_close(p, rp, **TOL)
    assert opt.state[ps[2]]["momentum_buffer"].dtype == torch.float32


def test_channels_last_conv(gen):
    """Non-contiguous params (channels_last) are updated through a contiguous copy."""
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    model = model.to(memory_format=torch.channels_last)
    ref_model = copy.deepcopy(model)
    masks = weight_masks(model, gen)
    ref_masks = [(rp, masks[p]) for rp, p in zip(ref_model.parameters(), model.parameters())
                 if p in masks]
    assert not model[0].weight.is_contiguous()
    opt = MaskedSGD(model.parameters(), lr=0.05, momentum=0.9, masks=masks)
    ref = torch.optim.SGD(ref_model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(5):
        x = torch.randn(2, 3, 9, 9, generator=gen).to(memory_format=torch.channels_last)
        for o, mdl in ((opt, model), (ref, ref_model)):
            o.zero_grad()
            mdl(x).square().mean().backward()
            o.step()
        mask_(ref_masks, ref)
        for p, rp in zip(model.parameters(), ref_model.parameters()):
            torch.testing.assert_close(p, rp, **TOL)
    assert not model[0].weight.is_contiguous(), "the param must keep its memory format"


def test_state_dict_round_trip(gen):
    check_state_dict_round_trip(lambda ps, m: MaskedSGD(ps, lr=0.05, masks=m),
                                CONFIGS["mixed-groups"], gen)


@pytest.mark.parametrize("direction", ["sgd->masked", "masked->sgd"])
def test_state_dict_interchangeable_with_sgd(direction, gen):
    cfg = dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)
    model = mlp()
    masks = weight_masks(model, gen)
    first = (torch.optim.SGD(model.parameters(), **cfg) if direction == "sgd->masked"
             else MaskedSGD(model.parameters(), masks=masks, **cfg))
    _run(model, first, batches(10))
    mask_(list(masks.items()), first)
    sd = copy.deepcopy(first.state_dict())
    ref_model = copy.deepcopy(model)
    second = (MaskedSGD(model.parameters(), masks=masks, lr=1.0) if direction == "sgd->masked"
              else torch.optim.SGD(model.parameters(), lr=1.0))
    assert sd["param_groups"][0].keys() == second.state_dict()["param_groups"][0].keys()
    second.load_state_dict(copy.deepcopy(sd))  # load_state_dict keeps the tensors it is given
    assert second.param_groups[0]["lr"] == 0.05
    ref_masks = [(rp, masks[p]) for rp, p in zip(ref_model.parameters(), model.parameters())
                 if p in masks]
    ref = torch.optim.SGD(ref_model.parameters(), **cfg)
    ref.load_state_dict(copy.deepcopy(sd))
    for x, y in batches(10, seed=7):
        for o, mdl in ((second, model), (ref, ref_model)):
            o.zero_grad()
            nn.functional.mse_loss(mdl(x), y).backward()
            o.step()
        mask_(ref_masks, ref)
        if direction == "masked->sgd":
            mask_(list(masks.items()), second)
    for p, rp in zip(model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, rp, **TOL)


@needs_cuda
def test_cuda_matches_sgd_then_mask(gen):
    """On CUDA (the fused kernel if lth_fast has one there, else the reference twin)."""
    model, ref_model = mlp().cuda(), mlp().cuda()
    masks = {p: m.cuda() for p, m in weight_masks(model, gen).items()}
    ref_masks = [(rp, masks[p]) for rp, p in zip(ref_model.parameters(), model.parameters())
                 if p in masks]
    mask_(ref_masks, torch.optim.SGD(ref_model.parameters()))
    mask_(list(masks.items()), torch.optim.SGD(model.parameters()))
    cfg = dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)
    opt = MaskedSGD(model.parameters(), masks=masks, **cfg)
    ref = torch.optim.SGD(ref_model.parameters(), **cfg)
    for x, y in batches(30):
        for o, mdl in ((opt, model), (ref, ref_model)):
            o.zero_grad()
            nn.functional.mse_loss(mdl(x.cuda()), y.cuda()).backward()
            o.step()
        mask_(ref_masks, ref)
        assert_pruned_zero(masks, opt, "cuda")
    for p, rp in zip(model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, rp, rtol=1e-5, atol=1e-5)
