"""Which tensors a Pruner picks: by default the .weight of Linear/Conv modules; include /
exclude filters by fnmatch pattern (parameter or module name) or module type; types= and
parameter_names= widen the eligible set; typos and empty selections are clear errors."""
from __future__ import annotations

import pytest
from torch import nn

from lth_fast import Pruner

from tests.helpers.training import ALL, Net


@pytest.mark.parametrize("kwargs,want", [
    (dict(), ALL),
    (dict(include="features.*"), ALL[:2]),
    (dict(include=[nn.Linear]), ALL[2:]),
    (dict(exclude=["classifier.3"]), ALL[:3]),
    (dict(exclude="*.3.weight"), ALL[:1] + ALL[2:3]),
    (dict(include=["classifier.*"], exclude=[nn.Conv2d, "classifier.0"]), ALL[3:]),
    (dict(parameter_names=("weight", "bias"), include="classifier.*"),
     ["classifier.0.weight", "classifier.0.bias", "classifier.3.weight", "classifier.3.bias"]),
    (dict(types=(nn.Conv2d, nn.BatchNorm2d)), ["features.0.weight", "features.1.weight",
                                               "features.3.weight"]),
    (dict(types=nn.Embedding), ["embed.weight"]),
])
def test_selection(kwargs, want):
    assert list(Pruner(Net(), **kwargs).names) == want


def test_tied_parameter_is_taken_once():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    model[1].weight = model[0].weight
    assert Pruner(model).names == ("0.weight",)


def test_weight_tied_to_an_embedding_is_not_a_linear_weight():
    # a head tied to the token embedding is the embedding too: pruning it by default would
    # prune the embedding silently, so it is eligible only with nn.Embedding in types
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.Linear(4, 10, bias=False))
    model[2].weight = model[0].weight
    assert Pruner(model).names == ("1.weight",)
    assert Pruner(model, types=(nn.Linear, nn.Embedding)).names == ("0.weight", "1.weight")
    with pytest.raises(ValueError, match="tied to a module of another type"):
        Pruner(model, include="2")


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(include="featurs.*"), ValueError, "matches no eligible parameter"),
    (dict(exclude="classifier.9"), ValueError, "matches no eligible parameter"),
    (dict(include=[nn.BatchNorm2d]), ValueError, "matches no eligible parameter"),
    (dict(include=[3]), TypeError, "include\\[0\\]"),
    (dict(exclude=ALL), ValueError, "no parameter to prune"),
    (dict(types=[int]), TypeError, "types\\[0\\]"),
    (dict(parameter_names=""), TypeError, "parameter_names"),
])
def test_selection_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Pruner(Net(), **kwargs)
    with pytest.raises(TypeError, match="nn.Module"):
        Pruner([nn.Linear(2, 2)])
