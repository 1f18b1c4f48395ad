"""Pruner <-> torch.nn.utils.prune: masks applied as weight_orig / weight_mask, and a pruner
built from a model pruned by torch (its reparametrization removed, weight = orig * mask)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from lth_fast import Pruner

from tests.helpers.ops import one_thread  # noqa: F401
from tests.helpers.training import Net, data


def test_to_torch_prune():
    model = Net()
    pruner = Pruner(model)
    pruner.prune(0.4)
    x = data(1)[0][0]
    model.eval()
    want = model(x)
    twin = pruner.to_torch_prune(copy.deepcopy(model))
    for n in pruner.names:
        module_name, _, local = n.rpartition(".")
        module = twin.get_submodule(module_name)
        assert torch.equal(getattr(module, local + "_mask").bool(), pruner.masks[n])
        assert isinstance(getattr(module, local + "_orig"), nn.Parameter)
    assert torch.equal(twin(x), want)
    with pytest.raises(ValueError, match="no parameter"):
        pruner.to_torch_prune(nn.Sequential(nn.Linear(2, 2)))


def test_from_torch_prune():
    model = Net()
    torch_prune.global_unstructured(
        [(model.features[0], "weight"), (model.classifier[0], "weight")],
        pruning_method=torch_prune.L1Unstructured, amount=0.3)
    torch_prune.random_unstructured(model.classifier[3], "weight", amount=0.5)
    torch_prune.l1_unstructured(model.classifier[3], "weight", amount=0.2)  # a container
    expect = {n: getattr(model.get_submodule(n.rpartition(".")[0]), "weight_mask").bool()
              for n in ("features.0.weight", "classifier.0.weight", "classifier.3.weight")}
    orig = model.classifier[3].weight_orig
    pruner = Pruner.from_torch_prune(model)
    assert set(pruner.names) == set(expect)
    assert not any(k.endswith(("_orig", "_mask")) for k in model.state_dict())
    assert model.classifier[3].weight is orig, "the Parameter object is kept"
    for n, m in expect.items():
        assert torch.equal(pruner.masks[n], m)
        assert (model.get_parameter(n)[~m] == 0).all()
    with pytest.raises(ValueError, match="no parameter pruned"):
        Pruner.from_torch_prune(Net())


def test_torch_prune_round_trip():
    model = Net()
    pruner = Pruner(model)
    pruner.prune(0.3, scope="layer")
    masks = {n: m.clone() for n, m in pruner.masks.items()}
    pruner.to_torch_prune()
    with pytest.raises(RuntimeError, match="from_torch_prune"):
        pruner.prune(0.1)
    back = Pruner.from_torch_prune(model)
    assert back.names == pruner.names
    assert all(torch.equal(back.masks[n], m) for n, m in masks.items())


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = nn.Linear(16, 16), nn.Linear(16, 16)
        self.b.weight = self.a.weight

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_tied_weights_are_refused_and_the_model_left_alone():
    model = Tied()
    pruner = Pruner(model)
    pruner.prune(0.5)
    with pytest.raises(ValueError, match=r"a\.weight is tied to \['b\.weight'\]"):
        pruner.to_torch_prune()
    assert model.b.weight is model.a.weight and not hasattr(model.a, "weight_orig")
    assert not any(torch_prune.is_pruned(m) for m in model.modules())


def test_include_by_a_tied_parameters_second_name():
    model = Tied()
    assert Pruner(model, include="b.weight").names == ("a.weight",)
    assert Pruner(model, include=["b"]).names == ("a.weight",)
