"""MaskedSGD as an Optimizer: masks set later, edited in place or read live from a Pruner;
deepcopy, closures, zero_grad; the same hyperparameter errors as torch.optim.SGD and clear
errors for bad masks."""
from __future__ import annotations


import pytest
import torch
from torch import nn

from lth_fast import MaskedSGD, Pruner

from tests.helpers.ops import one_thread  # noqa: F401
from tests.helpers.training import (_run, assert_pruned_zero, batches,
                                    check_deepcopy_keeps_the_masks, mlp, weight_masks)


def test_masks_can_change_later(gen):
    """set_masks after some steps, masks edited in place, and a Pruner read live."""
    model = mlp()
    opt = MaskedSGD(model.parameters(), lr=0.05, momentum=0.9)
    _run(model, opt, batches(3))
    masks = weight_masks(model, gen)
    opt.set_masks(masks)
    _run(model, opt, batches(1))
    assert_pruned_zero(masks, opt, "after set_masks")
    w = model[0].weight
    masks[w][0].fill_(False)  # prune a whole row in place
    _run(model, opt, batches(1))
    assert (w[0] == 0).all()
    pruner = Pruner(model)
    opt.set_masks(pruner)
    pruner.prune(0.5)
    _run(model, opt, batches(2))
    assert_pruned_zero(pruner.param_masks(), opt, "with a pruner")
    assert abs(pruner.density - 0.5) < 0.01
    opt.set_masks(None)
    _run(model, opt, batches(1))
    assert (model[0].weight != 0).float().mean() > 0.9  # unmasked again: everything moves


def test_deepcopy_keeps_the_masks(gen):
    check_deepcopy_keeps_the_masks(lambda ps, m: MaskedSGD(ps, lr=0.05, momentum=0.9, masks=m),
                                   gen, ("momentum_buffer",))


def test_closure_and_zero_grad():
    model = mlp()
    opt = MaskedSGD(model.parameters(), lr=0.05, masks=weight_masks(model, torch.Generator()))
    x, y = batches(1)[0]

    def closure():
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    first = opt.step(closure)
    assert first is not None and opt.step(closure).item() < first.item()
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(lr=-0.1), ValueError, "Invalid learning rate"),
    (dict(lr=0.1, momentum=-0.5), ValueError, "Invalid momentum value"),
    (dict(lr=0.1, weight_decay=-1.0), ValueError, "Invalid weight_decay value"),
    (dict(lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "Nesterov"),
    (dict(lr=torch.tensor([0.1, 0.2])), ValueError, "1-element"),
])
def test_hyperparameter_errors_like_sgd(kwargs, error, match):
    for cls in (torch.optim.SGD, MaskedSGD):
        with pytest.raises(error, match=match):
            cls(mlp().parameters(), **kwargs)


def test_mask_errors():
    model, other = mlp(), mlp(1)
    w = model[0].weight
    with pytest.raises(TypeError, match="keys must be the parameters"):
        MaskedSGD(model.parameters(), lr=0.1,
                  masks={"0.weight": torch.ones_like(w, dtype=torch.bool)})
    with pytest.raises(TypeError, match="torch.bool"):
        MaskedSGD(model.parameters(), lr=0.1, masks={w: torch.ones_like(w)})
    with pytest.raises(ValueError, match="shape"):
        MaskedSGD(model.parameters(), lr=0.1, masks={w: torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="not a parameter of this optimizer"):
        MaskedSGD(model.parameters(), lr=0.1,
                  masks={other[0].weight: torch.ones_like(w, dtype=torch.bool)})
    with pytest.raises(ValueError, match="none of the Pruner's 3 masks is for a parameter of "
                                         "this optimizer"):
        MaskedSGD(model.parameters(), lr=0.1, masks=Pruner(other))
    with pytest.raises(TypeError, match="masks must be None, a Pruner or a dict"):
        MaskedSGD(model.parameters(), lr=0.1, masks=[torch.ones_like(w, dtype=torch.bool)])
    with pytest.raises(ValueError, match="differentiable"):
        MaskedSGD(model.parameters(), lr=0.1, differentiable=True)


@pytest.mark.parametrize("path", ["masked", "attach"])
def test_a_pruner_over_frozen_weights_masks_the_optimizer_of_the_rest(path):
    """A Pruner covers a requires_grad=False weight too; the optimizer of the trainable ones
    skips its mask (as attach does), so it stays as prune() left it: masked, untrained."""
    from lth_fast import MaskedAdamW
    torch.manual_seed(0)
    model = mlp()
    model[0].weight.requires_grad_(False)
    pruner = Pruner(model)
    assert "0.weight" in pruner.names
    pruner.prune(0.5)
    frozen = model[0].weight.detach().clone()
    trainable = [p for p in model.parameters() if p.requires_grad]
    if path == "masked":
        opt = MaskedAdamW(trainable, lr=0.1, masks=pruner)
    else:
        opt = torch.optim.AdamW(trainable, lr=0.1)
        pruner.attach(opt)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, model[0].in_features)).square().sum().backward()
        opt.step()
    assert torch.equal(model[0].weight, frozen)
    w, m = model.get_parameter(pruner.names[-1]), pruner.masks[pruner.names[-1]]
    assert not w[~m].any() and w[m].ne(0).any()
