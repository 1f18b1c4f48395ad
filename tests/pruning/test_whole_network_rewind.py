"""Rewind means the whole network: Pruner.snapshot() records every parameter and buffer
(biases, norms, running statistics, counters), and rewind() restores all of them, the pruned
weights as snapshot x mask. snapshot(scope="pruned") keeps the old behaviour for callers that
keep the rest themselves."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import lth_fast
from lth_fast import Pruner

from tests.helpers.readme import example


def bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))


def train(model, opt, steps=6):
    model.train()
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(32, 8, generator=g), torch.randint(0, 4, (32,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def at_rewind_point(model, start, pruner):
    """The model's state_dict is the snapshot's x masks, bit for bit, every other tensor too."""
    state = model.state_dict()
    assert set(state) == set(start)
    for k, v in start.items():
        want = v * pruner.masks[k] if k in pruner.masks else v
        assert torch.equal(state[k], want), k


def test_the_readme_loop_as_written_rewinds_biases_and_batchnorm(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = bn_model()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    scope = {"model": model, "train": train, "levels": 2}
    exec(compile(example("pruner-loop", ["README.md"]), "README.md", "exec"), scope)
    pruner = scope["pruner"]
    assert pruner.density == pytest.approx(0.64, abs=0.01)
    assert int(model[1].num_batches_tracked) == 0   # trained twice, rewound each time
    at_rewind_point(model, start, pruner)


@pytest.mark.parametrize("optimizer", ["masked_adamw", "attach_sgd"])
def test_rewind_restores_every_tensor(optimizer):
    model = bn_model()
    pruner = Pruner(model)
    pruner.snapshot()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    opt = (lth_fast.MaskedAdamW(model.parameters(), lr=1e-2, masks=pruner)
           if optimizer == "masked_adamw" else torch.optim.SGD(model.parameters(), lr=0.1))
    if optimizer == "attach_sgd":
        pruner.attach(opt)
    for _ in range(2):
        train(model, opt)
        assert not torch.equal(model[1].running_mean, start["1.running_mean"])
        pruner.prune(0.3, scope="layer")
        pruner.rewind(opt)
        at_rewind_point(model, start, pruner)
    assert set(pruner.rewind_state) == set(start)


def test_scope_pruned_leaves_the_rest_as_trained():
    model = bn_model()
    pruner = Pruner(model)
    pruner.snapshot(scope="pruned")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, opt)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    pruner.prune(0.5)
    pruner.rewind()
    state = model.state_dict()
    for k in state:
        if k not in pruner.masks:
            assert torch.equal(state[k], trained[k]), k
    assert set(pruner.rewind_state) == set(pruner.names)
    with pytest.raises(ValueError, match="scope must be 'all' or 'pruned', got 'some'"):
        pruner.snapshot(scope="some")


def test_a_snapshot_elsewhere_and_a_loaded_rewind_state():
    model = bn_model()
    pruner = Pruner(model)
    pruner.snapshot(device="meta")          # where it is kept: every recorded tensor there
    assert all(t.is_meta for t in pruner.rewind_state.values())
    pruner.snapshot()
    dense = {k: v.clone() + 1 for k, v in pruner.rewind_state.items() if k not in pruner.names}
    pruner.load_rewind_state(dense)
    pruner.rewind()
    assert torch.equal(model[0].bias, dense["0.bias"])
    with pytest.raises(ValueError, match=r"missing tensors \['0.bias'\]"):
        pruner.load_rewind_state({k: v for k, v in dense.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="1.running_mean must be a tensor of shape"):
        pruner.load_rewind_state({**dense, "1.running_mean": torch.zeros(3)})


def test_a_ticket_rebuilds_the_network_and_its_training(tmp_path):
    """save_ticket holds the whole rewind point; load_ticket on a fresh model (another init)
    leaves it at the rewind point with the masks applied, and training it from the same data
    order gives the original ticket's training bit for bit."""
    model = bn_model()
    pruner = Pruner(model)
    pruner.snapshot()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, torch.optim.SGD(model.parameters(), lr=0.1))
    pruner.prune(0.4)
    path = tmp_path / "t.safetensors"
    pruner.save_ticket(path)
    pruner.rewind()
    train(model, lth_fast.MaskedSGD(model.parameters(), lr=0.1, momentum=0.9, masks=pruner))

    torch.manual_seed(99)
    fresh = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4))
    loaded = Pruner.load_ticket(path, fresh)
    at_rewind_point(fresh, start, loaded)
    train(fresh, lth_fast.MaskedSGD(fresh.parameters(), lr=0.1, momentum=0.9, masks=loaded))
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k


def test_a_ticket_written_before_dense_tensors_loads_with_a_warning(tmp_path):
    from lth_fast.pruning import ticket
    model = bn_model()
    pruner = Pruner(model)
    pruner.snapshot()
    old = tmp_path / "old.safetensors"
    ticket.save(old, pruner.mask_set)   # masks and the pruned weights' snapshot alone
    fresh = bn_model()
    with torch.no_grad():
        fresh[0].bias.fill_(3.0)
    with pytest.warns(UserWarning, match="carries no dense tensors"):
        loaded = Pruner.load_ticket(old, fresh)
    assert torch.equal(fresh[0].weight, model[0].weight)
    assert torch.equal(fresh[0].bias, torch.full((16,), 3.0))   # left as it was
    assert list(loaded.names) == list(pruner.names)


def test_a_ticket_of_another_network_changes_nothing(tmp_path):
    model = bn_model()
    pruner = Pruner(model)
    pruner.snapshot()
    path = tmp_path / "t.safetensors"
    pruner.save_ticket(path)
    other = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 4))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    target = Pruner(other)
    with pytest.raises(ValueError, match=r"missing tensors .*unexpected tensors"):
        target.restore_ticket(path)
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())
    assert all(m.all() for m in target.masks.values())
