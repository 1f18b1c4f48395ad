"""Pruner: which tensors it picks, pruning equal to lth_fast.reference.prune_ on the same
tensors, rewinding (iteration 0 and k) with optimizer reset, apply(), report, deepcopy,
state_dict, and clear errors. Selection: test_selection.py; tickets: test_ticket.py;
torch.nn.utils.prune: test_torch_prune_interop.py."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lth_fast import MaskedSGD, Pruner, reference

from tests.helpers.ops import bits, one_thread  # noqa: F401
from tests.helpers.targets import needs_cuda
from tests.helpers.training import Net, data, train, weights


# -- pruning == the reference on the same tensors --------------------------------------------
@pytest.mark.parametrize("scope,amount,per_layer", [
    ("global", 0.2, None), ("global", 500, None), ("layer", 0.3, None),
    ("layer", 0.2, {"classifier.3.weight": 0.1}), ("layer", 10, {"features.0.weight": 3}),
])
def test_prune_equals_reference(scope, amount, per_layer):
    model = Net()
    pruner = Pruner(model)
    with torch.no_grad():  # ties in the ranking, and dead entries from an earlier round
        model.classifier[0].weight[:2] = 0.5
    ref_masks = [m.clone() for m in pruner.masks.values()]
    for level in range(3):
        before = weights(pruner)
        stats = pruner.prune(amount, scope=scope, per_layer=per_layer)
        amounts = amount if per_layer is None else [per_layer.get(n, amount) for n in pruner.names]
        ref_stats = reference.prune_(before, ref_masks, amounts, scope=scope)
        assert stats == ref_stats, f"level {level}"
        for n, w0, rm in zip(pruner.names, before, ref_masks):
            assert torch.equal(pruner.masks[n], rm), f"level {level}: mask of {n}"
            w = model.get_parameter(n)
            assert (w[~rm] == 0).all(), f"level {level}: a pruned weight of {n} is not 0"
            assert torch.equal(w[rm], w0[rm]), f"level {level}: an alive weight of {n} changed"
    if scope == "layer" and per_layer and isinstance(amount, float):
        out, first = stats.layers[3], stats.layers[0]  # the output layer at half rate
        assert out.pruned == round(0.1 * out.alive_before)
        assert first.pruned == round(0.2 * first.alive_before)


def test_prune_mixed_dtypes_ranks_globally():
    """A half-precision layer among float32 ones: one ranking over exact upcasts."""
    model = nn.Sequential(nn.Linear(10, 20), nn.Linear(20, 5))
    model[1].half()
    pruner = Pruner(model)
    ws = [model[0].weight.detach().double(), model[1].weight.detach().double()]
    ms = [m.clone() for m in pruner.masks.values()]
    assert pruner.prune(0.4) == reference.prune_(ws, ms, 0.4)
    assert all(torch.equal(a, b) for a, b in zip(pruner.masks.values(), ms))


@pytest.mark.parametrize("call,error,match", [
    (lambda p: p.prune(0.2, per_layer={"classifier.3.weight": 0.1}), ValueError, "scope='layer'"),
    (lambda p: p.prune(0.2, scope="layer", per_layer={"nope": 0.1}), ValueError, "nope"),
    (lambda p: p.prune(1.5), ValueError, "amount"),
    (lambda p: p.prune(0.2, scope="local"), ValueError, "scope"),
    (lambda p: p.prune(10 ** 9), ValueError, "exceeds"),
    (lambda p: p.rewind(), RuntimeError, "snapshot"),
    (lambda p: p.save_ticket("/nonexistent/t.safetensors"), RuntimeError, "snapshot"),
])
def test_prune_errors_change_nothing(call, error, match):
    pruner = Pruner(Net())
    w0 = weights(pruner)
    with pytest.raises(error, match=match):
        call(pruner)
    assert all(m.all() for m in pruner.masks.values())
    assert all(torch.equal(a, b) for a, b in zip(weights(pruner), w0))


def test_nan_weight_error_names_the_parameter():
    model = Net()
    with torch.no_grad():
        model.classifier[3].weight[1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"weights\[3\] \(classifier\.3\.weight\)"):
        Pruner(model).prune(0.2)


# -- snapshot, rewind, apply -----------------------------------------------------------------
@pytest.mark.parametrize("rewind_at", [0, 3])
def test_rewind_to_iteration_k(rewind_at):
    model = Net()
    pruner = Pruner(model)
    opt = MaskedSGD(model.parameters(), lr=0.05, momentum=0.9, masks=pruner)
    train(model, opt, n=rewind_at)
    pruner.snapshot()
    at_k = weights(pruner)
    others = {n: p.detach().clone() for n, p in model.named_parameters() if n not in pruner.names}
    train(model, opt, n=3, seed=2)
    pruner.prune(0.3)
    assert len(opt.state) > 0
    pruner.rewind(opt)
    assert len(opt.state) == 0, "the optimizer state must be cleared"
    for n, w in zip(pruner.names, at_k):
        m = pruner.masks[n]
        assert torch.equal(bits(model.get_parameter(n).detach()),
                           bits(torch.where(m, w, torch.zeros(()))))
    for n, p in model.named_parameters():   # the whole network: biases back at k too
        if n in others:
            assert torch.equal(p, others[n]), n
    train(model, opt, n=2, seed=3)  # training goes on from the rewound ticket
    assert all((model.get_parameter(n)[~m] == 0).all() for n, m in pruner.masks.items())


def test_snapshot_is_a_copy_on_the_requested_device():
    model = Net()
    pruner = Pruner(model)
    pruner.snapshot(device="cpu")
    w0 = weights(pruner)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    pruner.rewind()
    assert all(torch.equal(a, b) for a, b in zip(weights(pruner), w0))
    assert all(s.device.type == "cpu" for k, s in pruner.state_dict().items() if "snapshot" in k)


def test_rewind_resets_adam():
    model = Net()
    pruner = Pruner(model)
    pruner.snapshot()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train(model, opt, n=2, after_step=pruner.apply)
    assert any("exp_avg" in s for s in opt.state.values())
    pruner.prune(0.5)
    pruner.rewind(opt)
    assert len(opt.state) == 0
    with pytest.raises(TypeError, match="Optimizer"):
        pruner.rewind(object())


def test_apply_after_another_optimizer():
    model = Net()
    pruner = Pruner(model)
    pruner.prune(0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    train(model, opt, n=1)
    w = model.classifier[0].weight
    m = pruner.masks["classifier.0.weight"]
    assert (w[~m] != 0).any(), "Adam moves pruned weights (the test needs it to)"
    alive = w.detach()[m].clone()
    pruner.apply()
    assert (w[~m] == 0).all() and torch.equal(w.detach()[m], alive)


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_masker_equals_apply_at_every_step(channels_last):
    """pruner.masker() is apply() with the lists built once: the same weights, bit for bit,
    after each of several Adam steps (contiguous weights and the strided path)."""
    model = Net()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    twin = copy.deepcopy(model)
    pruner, pruner2 = Pruner(model), Pruner(twin)
    pruner.prune(0.6)
    pruner2.prune(0.6)
    mask = pruner.masker()
    opt, opt2 = (torch.optim.Adam(m.parameters(), lr=1e-2) for m in (model, twin))
    for _ in range(3):
        train(model, opt, n=1)
        train(twin, opt2, n=1)
        mask()
        pruner2.apply()
        for (n, a), b in zip(model.named_parameters(), twin.parameters()):
            assert torch.equal(bits(a.detach()), bits(b.detach())), n
        assert all(not p[~m].any() for p, m in pruner.param_masks().items())


def test_channels_last_weights():
    """Non-contiguous weights take the torch.where path of rewind/apply; prune ranks a copy."""
    model = Net().to(memory_format=torch.channels_last)
    pruner = Pruner(model)
    pruner.snapshot()
    w0 = weights(pruner)
    ref_masks = [m.clone() for m in pruner.masks.values()]
    assert pruner.prune(0.4) == reference.prune_([w.contiguous() for w in w0], ref_masks, 0.4)
    assert not model.features[0].weight.is_contiguous()
    with torch.no_grad():
        model.features[0].weight.add_(1)
    pruner.rewind()
    for n, w, m in zip(pruner.names, w0, ref_masks):
        assert torch.equal(model.get_parameter(n).detach(), torch.where(m, w, torch.zeros(())))


# -- bookkeeping -----------------------------------------------------------------------------
def test_report_density_and_sparsity():
    pruner = Pruner(Net())
    pruner.prune(0.25)
    rows = pruner.report()
    alive = {n: int(m.sum()) for n, m in pruner.masks.items()}
    total = {n: m.numel() for n, m in pruner.masks.items()}
    assert [r["name"] for r in rows] == list(pruner.names)
    for r in rows:
        assert (r["alive"], r["total"]) == (alive[r["name"]], total[r["name"]])
        assert r["shape"] == list(pruner.masks[r["name"]].shape)
        assert math.isclose(r["remaining"], 100 * alive[r["name"]] / total[r["name"]])
    density = sum(alive.values()) / sum(total.values())
    assert math.isclose(pruner.density, density) and math.isclose(pruner.sparsity(), 1 - density)
    assert math.isclose(density, 0.75, abs_tol=1e-3)
    text = str(rows)
    assert all(n in text for n in pruner.names) and "total" in text and "75.00%" in text


def test_deepcopy_keeps_masks_independent():
    model = Net()
    pruner = Pruner(model)
    pruner.prune(0.2)
    twin = copy.deepcopy(pruner)
    assert twin.model is not model
    twin.prune(0.5)
    assert math.isclose(pruner.density, 0.8, abs_tol=1e-3)
    assert math.isclose(twin.density, 0.4, abs_tol=1e-3)
    model2, pruner2 = copy.deepcopy((model, pruner))
    assert pruner2.model is model2
    ids = {id(p) for p in model2.parameters()}
    assert len(pruner2.param_masks()) == 4 and all(id(p) in ids for p in pruner2.param_masks())


def test_state_dict_round_trip():
    model = Net()
    pruner = Pruner(model)
    keys_before = list(model.state_dict())
    pruner.prune(0.3)
    assert list(model.state_dict()) == keys_before, "the model is not reparametrized"
    sd = pruner.state_dict()
    assert list(sd) == [f"{n}.mask" for n in pruner.names]
    pruner.snapshot()
    sd = copy.deepcopy(pruner.state_dict())
    assert set(sd) == {f"{n}.{k}" for n in pruner.names for k in ("mask", "snapshot")}
    other = Pruner(Net(seed=1))
    held = list(other.masks.values())
    other.load_state_dict(sd)
    for n, m in zip(other.names, held):
        assert other.masks[n] is m, "masks are loaded in place"
        assert torch.equal(m, pruner.masks[n])
    other.rewind()
    assert all(torch.equal(a, b) for a, b in zip(weights(other), weights(pruner)))


@pytest.mark.parametrize("edit,error,match", [
    (lambda sd: sd.pop("classifier.3.weight.mask"), ValueError, "missing keys"),
    (lambda sd: sd.update(extra=torch.ones(1)), ValueError, "unexpected keys"),
    (lambda sd: sd.update({"features.0.weight.mask": torch.ones(3, dtype=torch.bool)}),
     ValueError, "shape"),
    (lambda sd: sd.update({"features.0.weight.mask": torch.ones(6, 3, 3, 3)}), TypeError, "bool"),
])
def test_load_state_dict_errors_change_nothing(edit, error, match):
    source = Pruner(Net())
    source.prune(0.5)
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    edit(sd)
    target = Pruner(Net())
    with pytest.raises(error, match=match):
        target.load_state_dict(sd)
    assert all(m.all() for m in target.masks.values())


@needs_cuda
def test_cuda_model(tmp_path):
    """Masks follow the model to the GPU; a CPU snapshot rewinds a GPU model; tickets load."""
    model = Net()
    pruner = Pruner(model)
    pruner.snapshot(device="cpu")
    model.cuda()
    w = [x.cpu() for x in weights(pruner)]
    ms = [m.clone() for m in pruner.masks.values()]
    assert pruner.prune(0.3) == reference.prune_(w, ms, 0.3)
    assert all(m.is_cuda for m in pruner.masks.values())
    assert all(torch.equal(a.cpu(), b) for a, b in zip(pruner.masks.values(), ms))
    opt = MaskedSGD(model.parameters(), lr=0.05, momentum=0.9, masks=pruner)
    for x, y in data(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x.cuda()), y.cuda()).backward()
        opt.step()
    pruner.rewind(opt)
    snap = [s for k, s in pruner.state_dict().items() if k.endswith("snapshot")]
    assert all(s.device.type == "cpu" for s in snap)
    for x, s, m in zip(weights(pruner), snap, ms):
        assert x.is_cuda and torch.equal(x.cpu(), torch.where(m, s, torch.zeros(())))
    pruner.save_ticket(tmp_path / "t.safetensors")
    loaded = Pruner.load_ticket(tmp_path / "t.safetensors", Net().cuda())
    assert all(torch.equal(loaded.masks[n], pruner.masks[n]) for n in pruner.names)


def test_compiled_model_names_and_tickets_move_to_the_plain_model(tmp_path):
    """A Pruner of a torch.compile'd model names its tensors as the plain model does, so its
    ticket loads into the plain model, and the two share parameters and masks."""
    model = Net()
    compiled = torch.compile(model)
    pruner = Pruner(compiled)
    assert pruner.names == Pruner(Net()).names and pruner.model is model
    pruner.snapshot()
    pruner.prune(0.3)
    pruner.save_ticket(tmp_path / "t.safetensors")
    plain = Pruner.load_ticket(tmp_path / "t.safetensors", Net())
    assert all(torch.equal(plain.masks[n], pruner.masks[n]) for n in pruner.names)
    again = Pruner.load_ticket(tmp_path / "t.safetensors", torch.compile(Net()))
    assert again.names == pruner.names


def test_an_optimizer_over_a_subset_skips_the_other_masks():
    model = Net()
    pruner = Pruner(model)
    opt = MaskedSGD([p for n, p in model.named_parameters() if n != "classifier.3.weight"],
                    lr=0.1, masks=pruner)
    assert model.get_parameter("classifier.3.weight") not in opt._masks_now()
    with pytest.raises(ValueError, match=r"a mask was given for a tensor of shape \[7, 24\] "
                                         r"that is not a parameter of this"):
        MaskedSGD([p for n, p in model.named_parameters() if n != "classifier.3.weight"],
                  lr=0.1, masks={model.get_parameter("classifier.3.weight"):
                                 pruner.masks["classifier.3.weight"]})
