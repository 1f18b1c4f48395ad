"""Pruner over a model built on the meta device (then materialised with to_empty), and the
learning-rate schedule rewound with the weights (snapshot(scheduler=...) / rewind(...))."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lth_fast import MaskedSGD, Pruner


def mlp():
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))


# -- meta ---------------------------------------------------------------------------------------
def test_pruner_of_a_meta_model_works_once_materialised():
    with torch.device("meta"):
        model = mlp()
    pruner = Pruner(model)
    assert all(not m.is_meta and bool(m.all()) for m in pruner.masks.values())
    assert pruner.density == 1.0
    for call in (pruner.snapshot, lambda: pruner.prune(0.5), pruner.apply):
        with pytest.raises(RuntimeError, match=r"0\.weight is on the meta device and has no "
                                               r"values yet; materialise the model first "
                                               r"\(model\.to_empty\(device=\.\.\.\)"):
            call()
    assert all(bool(m.all()) for m in pruner.masks.values())  # nothing happened
    model.to_empty(device="cpu")
    torch.manual_seed(0)
    for layer in (model[0], model[2]):
        layer.reset_parameters()
    init = copy.deepcopy(model.state_dict())
    pruner.snapshot()
    stats = pruner.prune(0.5)
    w = model[0].weight
    assert stats.pruned == (12 * 16 + 16 * 4) // 2
    assert torch.equal(w == 0, ~pruner.masks["0.weight"])
    with torch.no_grad():
        w.add_(1.0)
    pruner.rewind()
    assert torch.equal(w, torch.where(pruner.masks["0.weight"], init["0.weight"], 0.0))


def test_a_ticket_loads_into_a_meta_model_before_it_is_materialised(tmp_path):
    torch.manual_seed(0)
    dense = mlp()
    source = Pruner(dense)
    source.snapshot()
    source.prune(0.3)
    source.save_ticket(tmp_path / "t.safetensors")
    with torch.device("meta"):
        model = mlp()
    pruner = Pruner.load_ticket(tmp_path / "t.safetensors", model)
    model.to_empty(device="cpu")
    pruner.rewind()
    for n, m in source.masks.items():
        assert torch.equal(pruner.masks[n], m)
        want = torch.where(m, source.mask_set.snapshot[n], 0.0)
        assert torch.equal(model.get_parameter(n), want)


# -- the schedule -------------------------------------------------------------------------------
def train(model, opt, sched, pruner, steps):
    lrs = []
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(8, 12)).square().mean().backward()
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("make", [
    lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 6], gamma=0.1),
    lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min(1.0, (i + 1) / 4)),
    lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
    lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=30),
], ids=["multistep", "lambda", "cosine", "onecycle"])
@pytest.mark.parametrize("k", [0, 4], ids=["init", "late"])
def test_rewind_replays_the_schedule_from_the_rewind_point(make, k):
    """After rewind(opt, scheduler=...), a level sees the same lrs as the first run did from
    iteration k on, whatever scheduler and whether k is 0 or later."""
    torch.manual_seed(0)
    model = mlp()
    pruner = Pruner(model)
    opt = MaskedSGD(model.parameters(), lr=0.1, momentum=0.9, masks=pruner)
    sched = make(opt)
    first = [opt.param_groups[0]["lr"]] + train(model, opt, sched, pruner, k)
    pruner.snapshot(scheduler=sched)
    first += train(model, opt, sched, pruner, 8)
    pruner.prune(0.2)
    pruner.rewind(opt, scheduler=sched)
    assert opt.state == {} or all(not s for s in opt.state.values())
    again = [opt.param_groups[0]["lr"]] + train(model, opt, sched, pruner, 8)
    assert again == first[k:]


def test_rewind_without_a_scheduler_keeps_the_lr():
    model = mlp()
    pruner = Pruner(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    pruner.snapshot(scheduler=sched)
    train(model, opt, sched, pruner, 3)
    pruner.rewind(opt)
    assert opt.param_groups[0]["lr"] == 0.1 * 0.5 ** 3


def test_schedule_errors_name_the_problem_and_change_nothing():
    model = mlp()
    pruner = Pruner(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    pruner.snapshot()
    with pytest.raises(ValueError, match=r"the snapshot recorded no scheduler; take it with "
                                         r"snapshot\(scheduler=\.\.\.\)"):
        pruner.rewind(opt, scheduler=sched)
    with pytest.raises(TypeError, match="scheduler must be a torch.optim.lr_scheduler"):
        pruner.snapshot(scheduler=opt)
    pruner.snapshot(scheduler=sched)
    train(model, opt, sched, pruner, 2)
    before = copy.deepcopy(model.state_dict()), copy.deepcopy(sched.state_dict())
    cases = [
        (dict(optimizer=other, scheduler=sched), ValueError, "steps another optimizer"),
        (dict(scheduler=torch.optim.lr_scheduler.ExponentialLR(opt, 0.9)), TypeError,
         "the snapshot recorded a StepLR, not a ExponentialLR"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            pruner.rewind(**kw)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before[0].items())
    assert sched.state_dict() == before[1]
