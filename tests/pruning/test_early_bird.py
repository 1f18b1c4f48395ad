"""EarlyBird (lth_fast.pruning.early_bird), Pruner.draw, and `lth-fast imp --early-bird` with
its report and the comparison against a run trained in full (--against)."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lth_fast import Pruner, mask_distance
from lth_fast.cli import main
from lth_fast.imp import run_imp
from lth_fast.imp.early_bird_report import compare, early_bird_lines
from lth_fast.pruning.early_bird import EarlyBird

from tests.helpers.imp import learnable_mnist, tiny


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return learnable_mnist(str(tmp_path_factory.mktemp("mnist")))


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(37, 50), nn.ReLU(), nn.Linear(50, 10))


@pytest.mark.parametrize("scope,per_layer", [("global", None), ("layer", {"2.weight": 0.1})])
def test_draw_is_prune_without_changing_masks_or_weights(scope, per_layer):
    a, b = mlp(), mlp()
    pa, pb = Pruner(a), Pruner(b)
    pa.prune(0.3, scope="global")
    pb.load_state_dict(pa.state_dict())
    with torch.no_grad():
        for p, q in zip(a.parameters(), b.parameters()):
            q.copy_(p)
    before = {n: m.clone() for n, m in pa.masks.items()}
    weights = [p.detach().clone() for p in a.parameters()]
    drawn = pa.draw(0.25, scope, per_layer)
    assert all(torch.equal(pa.masks[n], before[n]) for n in before)
    assert all(torch.equal(p, w) for p, w in zip(a.parameters(), weights))
    pb.prune(0.25, scope, per_layer)
    assert all(torch.equal(drawn[n], pb.masks[n]) for n in pb.names)
    again = pa.draw(0.25, scope, per_layer, into=drawn)  # scratch reused, same result
    assert again is drawn and all(torch.equal(drawn[n], pb.masks[n]) for n in pb.names)
    with pytest.raises(ValueError, match=r"into\['0.weight'\] must be a torch.bool tensor"):
        pa.draw(0.25, into={"0.weight": torch.ones(2, dtype=torch.bool)})


def test_fires_once_the_newest_mask_is_close_to_every_older_one():
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(1000, generator=gen) > 0.2
    bird = EarlyBird(window=3, eps=0.01)
    flips = [100, 50, 20, 8, 4, 2, 0]  # entries flipped from the base mask at each push
    fired = []
    for step, k in enumerate(flips):
        m = base.clone()
        m[:k] = ~m[:k]
        fired.append(bird.push({"w": m}, step=step))
    # the distance from push i to push j is |k_i - k_j| / 1000 (the flips are nested)
    want = [max(abs(flips[i] - flips[j]) for j in (i - 2, i - 1)) / 1000
            for i in range(2, len(flips))]
    assert [d for _, d in bird.history] == pytest.approx(want)
    assert fired == [False] * 2 + [d < 0.01 for d in want]
    assert bird.fired_at == 5 and bird.fired
    bird.reset()
    assert not bird.fired and bird.history == []


def test_distance_equals_the_fused_op_and_rejects_other_masks():
    gen = torch.Generator().manual_seed(1)
    masks = [[torch.rand(s, generator=gen) > 0.5 for s in ((7, 9), (13,))] for _ in range(2)]
    bird = EarlyBird(window=2, eps=0.5)
    bird.push(masks[0])
    bird.push(masks[1])
    assert bird.history[0][1] == mask_distance(masks[0], masks[1]).value
    with pytest.raises(ValueError, match="not those of the earlier pushes"):
        bird.push([masks[0][0]])
    with pytest.raises(TypeError, match=r"masks\[0\] must be a torch.bool tensor"):
        bird.push([torch.zeros(7, 9), masks[0][1]])
    for bad in (dict(window=1), dict(window=2.5), dict(eps=0.0), dict(eps=1.5),
                dict(eps=float("nan"))):
        with pytest.raises(ValueError, match="EarlyBird: (window|eps)"):
            EarlyBird(**bad)


def test_observe_draws_the_next_masks_from_a_pruner():
    model = mlp()
    pruner = Pruner(model)
    bird = EarlyBird(window=2, eps=0.1)
    assert not bird.observe(pruner, 0.2, step=0)
    assert bird.observe(pruner, 0.2, step=1)  # same weights: distance 0
    assert bird.fired_at == 1 and bird.history == [(1, 0.0)]
    assert pruner.density == 1.0  # observing prunes nothing


def test_imp_early_bird_stops_level_zero_and_reports(data_dir, tmp_path, capsys):
    full = tmp_path / "full"
    eb = tmp_path / "eb"
    run_imp(tiny(data_dir, controls=()), full, progress=False, log=lambda *_: None)
    # eps 1: the monitor fires as soon as its window is full, at the 3rd evaluation
    cfg = tiny(data_dir, controls=(), early_bird=1.0, early_bird_window=3)
    levels = run_imp(cfg, eb, progress=False, log=lambda *_: None)
    rec = levels[0]["early_bird"]
    assert rec["iteration"] == 20 and rec["stopped_at"] == 20 and rec["saved_iterations"] == 10
    assert levels[0]["branches"]["ticket"]["evals"][-1][0] == 20
    assert [m["level"] for m in levels] == [0, 1, 2]
    lines = early_bird_lines(levels)
    assert "drawn at iteration 20 of 30; 10 dense iterations saved, 33% of level 0" in lines[0]
    table = compare(str(eb), str(full))
    assert "mask distance" in table and len(table.splitlines()) == 4
    # level 1's masks differ from the full run's (drawn from other weights), level 0 has none
    with open(eb / "level_00" / "metrics.json") as f:
        assert json.load(f)["early_bird"]["eps"] == 1.0
    assert main(["imp", "--dataset", "mnist", "--data-dir", data_dir, "--val-size", "100",
                 "--batch-size", "20", "--iterations", "30", "--eval-every", "10",
                 "--levels", "2", "--controls", "none", "--early-bird", "1",
                 "--early-bird-window", "3", "--run-dir", str(eb), "--against", str(full),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "early-bird (eps 1, window 3)" in out and "against" in out


def test_early_bird_config_errors(data_dir):
    with pytest.raises(ValueError, match=r"early_bird \(eps\) must be a distance"):
        tiny(data_dir, early_bird=0.0)
    with pytest.raises(ValueError, match="early_bird_window must be >= 2"):
        tiny(data_dir, early_bird=0.1, early_bird_window=1)
