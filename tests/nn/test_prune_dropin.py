"""lth_fast.nn.utils.prune against torch.nn.utils.prune, the oracle, run beside it on the same
model: equal masks, weights and module state on tie-free scores, over several rounds, for
global and local L1 and random pruning, with and without importance scores, mixed with torch's
structured methods and with torch's module itself; the fused selection really runs (torch's
topk and parameters_to_vector are not called); ties go to the earlier position; torch's own
path, and so torch's behaviour, where the kernel cannot take the input; torch's errors for bad
amounts, with the model untouched."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.utils.prune as tp
from torch import nn

import lth_fast.nn.utils.prune as lp

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def net(device="cpu", dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Conv2d(2, 3, 2), nn.Linear(12, 5)).to(
        device, dtype)


def distinct_(tensors, gen, scale=1.0):
    """Globally distinct magnitudes (exact in every dtype here: at most 200 of them), random
    signs and order: no ties for torch's topk to break its own way."""
    n = sum(t.numel() for t in tensors)
    assert n <= 256
    mags = (torch.randperm(n, generator=gen) + 1).float() * scale
    signs = torch.randint(0, 2, (n,), generator=gen).float() * 2 - 1
    values = (mags * signs).split([t.numel() for t in tensors])
    with torch.no_grad():
        for t, v in zip(tensors, values):
            t.copy_(v.view_as(t))


TOTAL = 185  # entries in targets(net())


def targets(model):
    return [(model[0], "weight"), (model[2], "weight"), (model[3], "weight"), (model[3], "bias")]


def state(model):
    return {k: (v.dtype, v.cpu()) for k, v in model.state_dict().items()}


def assert_same_model(ours, theirs):
    a, b = state(ours), state(theirs)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k][0] == b[k][0], k
        torch.testing.assert_close(a[k][1], b[k][1], rtol=0, atol=0, equal_nan=True, msg=k)
    for mo, mt in zip(ours.modules(), theirs.modules()):
        ho, ht = list(mo._forward_pre_hooks.values()), list(mt._forward_pre_hooks.values())
        assert [type(h).__name__ for h in ho] == [type(h).__name__ for h in ht]
        for h, g in zip(ho, ht):
            if isinstance(h, tp.PruningContainer):
                assert [type(x).__name__ for x in h] == [type(x).__name__ for x in g]


def both(device, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    a, b = net(device, dtype), net(device, dtype)
    for m in (a, b):
        distinct_([getattr(mod, n) for mod, n in targets(m)], torch.Generator().manual_seed(seed))
    return a, b, g


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("amount", [0.3, 17, 0.0, 0])
def test_global_l1_equals_torch_over_rounds(target, dtype, amount):
    ours, theirs, _ = both(target, dtype)
    for _ in range(4):
        lp.global_unstructured(targets(ours), pruning_method=lp.L1Unstructured, amount=amount)
        tp.global_unstructured(targets(theirs), pruning_method=tp.L1Unstructured, amount=amount)
        assert_same_model(ours, theirs)
    pruned = sum(int((getattr(m, n + "_mask") == 0).sum()) for m, n in targets(ours))
    total = alive = sum(getattr(m, n).numel() for m, n in targets(ours))
    for _ in range(4):
        alive -= amount if isinstance(amount, int) else round(amount * alive)
    assert pruned == total - alive


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_global_l1_equals_torch_on_tensors_widened_range_by_range(target, dtype):
    """Tensors of more than 4,096 entries, whose new mask buffers are widened from the bools
    in their first bytes range by range; the buffer is the one mask a first pruning makes."""
    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(300, 70), nn.Conv2d(16, 33, 3)).to(target, dtype)
    models = make(), make()
    params = [[(m[0], "weight"), (m[1], "weight"), (m[0], "bias")] for m in models]
    sizes = [getattr(m, n).numel() for m, n in params[0]]
    g = torch.Generator().manual_seed(1)  # distinct magnitudes, exact in both dtypes
    mags = (torch.randperm(sum(sizes), generator=g) + 1).to(dtype)
    signs = torch.randint(0, 2, (sum(sizes),), generator=g).to(dtype) * 2 - 1
    with torch.no_grad():
        for plist in params:
            for (m, n), v in zip(plist, (mags * signs).split(sizes)):
                getattr(m, n).copy_(v.view_as(getattr(m, n)))
    for rnd in range(3):
        lp.global_unstructured(params[0], pruning_method=lp.L1Unstructured, amount=0.3)
        tp.global_unstructured(params[1], pruning_method=tp.L1Unstructured, amount=0.3)
        assert_same_model(*models)
        if rnd == 0:
            for m, n in params[0]:
                hook, = [h for h in m._forward_pre_hooks.values() if h._tensor_name == n]
                assert hook.mask is getattr(m, n + "_mask")


@pytest.mark.parametrize("dtype", DTYPES + [torch.complex64, torch.int32])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 4095, 4096, 4097, 16385, 100_003])
def test_widen_makes_the_leading_bools_the_buffers_values_in_place(target, dtype, n):
    from lth_fast.nn.utils.prune import _bools_in, _widen_
    buffer = torch.full((n,), 7, dtype=dtype, device=target)
    want = torch.rand(n, generator=torch.Generator().manual_seed(n)) < 0.5
    _bools_in(buffer).copy_(want.to(target))
    at = buffer.data_ptr()
    assert _widen_(buffer) is buffer and buffer.data_ptr() == at
    assert torch.equal(buffer.cpu(), want.to(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_importance_scores_equal_torch(target, dtype):
    ours, theirs, _ = both(target, dtype)
    for rnd in range(3):
        scores = {}
        g = torch.Generator().manual_seed(rnd)
        tensors = [torch.empty_like(getattr(m, n)) for m, n in targets(ours)]
        distinct_(tensors, g, scale=0.5)
        for model, mod in ((ours, lp), (theirs, tp)):
            scores = {(m, n): s for (m, n), s in zip(targets(model), tensors)}
            mod.global_unstructured(targets(model), pruning_method=mod.L1Unstructured,
                                    amount=0.25, importance_scores=scores)
        assert_same_model(ours, theirs)


@pytest.mark.parametrize("amount", [0.4, 5])
def test_local_l1_and_importance_scores_equal_torch(target, amount):
    ours, theirs, g = both(target, torch.float32)
    imp = torch.empty_like(ours[0].weight)
    distinct_([imp], g, scale=0.1)
    for rnd in range(3):
        for mod, model in ((lp, ours), (tp, theirs)):
            mod.l1_unstructured(model[0], "weight", amount=amount)
            mod.l1_unstructured(model[3], "weight", amount=amount, importance_scores=None)
            mod.l1_unstructured(model[2], "weight", amount=amount, importance_scores=None)
        assert_same_model(ours, theirs)
    for mod, model in ((lp, ours), (tp, theirs)):
        mod.remove(model[0], "weight")
        mod.l1_unstructured(model[0], "weight", amount=amount, importance_scores=imp)
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_equals_torch_on_cpu(dtype):
    """The same draws from the same generator as torch, the k largest pruned: torch's masks."""
    ours, theirs, _ = both("cpu", dtype)
    for rnd in range(3):
        for mod, model in ((lp, ours), (tp, theirs)):
            torch.manual_seed(100 + rnd)
            mod.global_unstructured(targets(model), pruning_method=mod.RandomUnstructured,
                                    amount=0.2)
            mod.random_unstructured(model[0], "bias", amount=3)
        assert_same_model(ours, theirs)


def test_random_prunes_exact_counts_on_every_device(target):
    model = net(target)
    lp.global_unstructured(targets(model), pruning_method=lp.RandomUnstructured, amount=0.5)
    lp.global_unstructured(targets(model), pruning_method=lp.RandomUnstructured, amount=0.5)
    k1 = round(0.5 * TOTAL)
    k2 = round(0.5 * (TOTAL - k1))
    assert sum(int((getattr(m, n + "_mask") == 0).sum()) for m, n in targets(model)) == k1 + k2


def test_mixed_with_torch_and_structured_methods():
    """A model pruned with one module is pruned further with the other, through torch's
    PruningContainer, and torch's structured methods run in between."""
    ours, theirs, _ = both("cpu", torch.float32)
    steps = [
        lambda mod, m: mod.global_unstructured(targets(m), pruning_method=mod.L1Unstructured,
                                               amount=0.2),
        lambda mod, m: mod.ln_structured(m[0], "weight", amount=2, n=2, dim=0),
        lambda mod, m: tp.global_unstructured(targets(m), pruning_method=tp.L1Unstructured,
                                              amount=0.2),
        lambda mod, m: mod.l1_unstructured(m[0], "weight", amount=0.3),
        lambda mod, m: mod.random_structured(m[2], "weight", amount=1, dim=1),
        lambda mod, m: mod.global_unstructured(targets(m), pruning_method=tp.L1Unstructured,
                                               amount=0.3),
    ]
    for step in steps:
        torch.manual_seed(5)
        step(lp, ours)
        torch.manual_seed(5)
        step(tp, theirs)
        assert_same_model(ours, theirs)
    hook = next(iter(ours[0]._forward_pre_hooks.values()))
    assert isinstance(hook, tp.PruningContainer) and len(hook) == 5


def test_state_is_torchs():
    """weight_orig is the same Parameter (optimizers keep it), weight_mask a float buffer, the
    forward computes orig * mask, and remove, deepcopy, pickling and state_dict work as with
    torch's module (deepcopy, as there, once a forward without grad has made `weight` a leaf)."""
    model, theirs = net(), net()
    p = model[0].weight
    lp.global_unstructured(targets(model), pruning_method=lp.L1Unstructured, amount=0.5)
    tp.global_unstructured(targets(theirs), pruning_method=tp.L1Unstructured, amount=0.5)
    assert model[0].weight_orig is p
    assert model[0].weight_mask.dtype == torch.float32
    assert torch.equal(model[0].weight, p * model[0].weight_mask)
    for m in (model, theirs):
        with pytest.raises(RuntimeError, match="deepcopy"):
            copy.deepcopy(m)
    x = torch.randn(4, 8)
    with torch.no_grad():
        out = model[0](x)
        model[2](torch.randn(1, 2, 3, 3)), model[3](torch.randn(1, 12))
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert torch.equal(clone[0](x), out)
        assert lp.is_pruned(clone)
    fresh = net()
    for m, n in targets(fresh):
        lp.identity(m, n)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh[0](x), out)
    lp.remove(model[0], "weight")
    assert model[0].weight is p and torch.equal(model[0](x), out)


def test_selection_is_fused(monkeypatch):
    """No concatenation and no sort: torch's parameters_to_vector and topk are never called."""
    def refuse(*a, **k):
        raise AssertionError("torch's concatenating path ran")
    calls = []
    real = lp.prune_
    monkeypatch.setattr(lp, "prune_", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(torch.nn.utils, "parameters_to_vector", refuse)
    monkeypatch.setattr(torch, "topk", refuse)
    model = net()
    for method in (lp.L1Unstructured, lp.RandomUnstructured, tp.L1Unstructured):
        lp.global_unstructured(targets(model), pruning_method=method, amount=0.2)
    lp.l1_unstructured(model[0], "bias", amount=2)
    lp.random_unstructured(model[0], "bias", amount=2)
    assert len(calls) == 5


def test_ties_go_to_the_earlier_position():
    model = net()
    with torch.no_grad():
        for m, n in targets(model):
            getattr(m, n).fill_(0.5)
    lp.global_unstructured(targets(model), pruning_method=lp.L1Unstructured, amount=100)
    assert (model[0].weight_mask == 0).all()              # 96 entries, then ...
    assert model[2].weight_mask.view(-1)[:4].eq(0).all()  # ... the next 4 in order
    assert model[2].weight_mask.view(-1)[4:].eq(1).all()


class EveryOther(tp.BasePruningMethod):
    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        mask = default_mask.clone()
        mask.view(-1)[::2] = 0
        return mask


def test_torchs_path_where_the_kernel_cannot_take_the_input(monkeypatch):
    # a NaN: torch's topk decides, as with torch's module
    ours, theirs, _ = both("cpu", torch.float32)
    for m in (ours, theirs):
        with torch.no_grad():
            m[0].weight[1, 2] = float("nan")
    lp.global_unstructured(targets(ours), pruning_method=lp.L1Unstructured, amount=0.3)
    tp.global_unstructured(targets(theirs), pruning_method=tp.L1Unstructured, amount=0.3)
    assert_same_model(ours, theirs)
    # integer tensors, through compute_mask
    t = torch.arange(-10, 10).view(4, 5)
    for mod in (lp, tp):
        mask = mod.L1Unstructured(amount=6).compute_mask(t, torch.ones_like(t))
        assert mask.dtype == torch.int64 and int((mask == 0).sum()) == 6
    # a custom method inside global_unstructured
    ours, theirs, _ = both("cpu", torch.float32)
    lp.global_unstructured(targets(ours), pruning_method=EveryOther)
    tp.global_unstructured(targets(theirs), pruning_method=EveryOther)
    assert_same_model(ours, theirs)
    # a compute_mask replaced by the user is the one that runs
    seen = []
    monkeypatch.setattr(lp.L1Unstructured, "compute_mask",
                        lambda self, t, default_mask: seen.append(t.numel()) or default_mask)
    lp.global_unstructured(targets(net()), pruning_method=lp.L1Unstructured, amount=0.3)
    assert seen == [TOTAL]


@pytest.mark.parametrize("amount, error", [(1.5, ValueError), (-1, ValueError),
                                           ("half", TypeError), (TOTAL + 1, ValueError)])
def test_bad_amounts_raise_torchs_errors_and_change_nothing(amount, error):
    model = net()
    before = state(model)
    for mod in (lp, tp):
        with pytest.raises(error):
            mod.global_unstructured(targets(model), pruning_method=mod.L1Unstructured,
                                    amount=amount)
    with pytest.raises(error):
        lp.l1_unstructured(model[0], "weight", amount=amount if amount != TOTAL + 1 else 97)
    assert not lp.is_pruned(model)
    after = state(model)
    assert all(torch.equal(before[k][1], after[k][1]) for k in before)


def test_bad_arguments_raise_torchs_errors():
    with pytest.raises(TypeError, match="not an Iterable"):
        lp.global_unstructured(5, pruning_method=lp.L1Unstructured, amount=1)
    with pytest.raises(TypeError, match="must be of type dict"):
        lp.global_unstructured(targets(net()), pruning_method=lp.L1Unstructured, amount=1,
                               importance_scores=[1])
    with pytest.raises(TypeError, match="unstructured"):
        lp.global_unstructured(targets(net()), pruning_method=lp.LnStructured, amount=1, n=2,
                               dim=0)


def test_public_api_is_torchs():
    public = {n for n in vars(tp) if not n.startswith("__") and n not in
              {"Iterable", "ABC", "abstractmethod", "numbers", "torch", "annotations"}}
    missing = public - set(vars(lp))
    assert not missing
    assert issubclass(lp.L1Unstructured, tp.L1Unstructured)
    assert issubclass(lp.RandomUnstructured, tp.RandomUnstructured)
    assert lp.PruningContainer is tp.PruningContainer and lp.remove is tp.remove


def test_import_needs_no_lightning():
    import subprocess
    import sys
    code = ("import sys, lth_fast, lth_fast.nn.utils.prune; "
            "assert 'lightning' not in sys.modules and 'pytorch_lightning' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_masks_with_other_values_than_0_and_1_are_combined_as_torch_does():
    """torch prunes among the entries whose mask is exactly 1 and multiplies the old mask in."""
    ours, theirs, g = both("cpu", torch.float32)
    odd = torch.ones_like(ours[0].weight)
    odd[0, :4] = torch.tensor([0.5, 2.0, 0.0, -1.0])
    for mod, model in ((lp, ours), (tp, theirs)):
        mod.custom_from_mask(model[0], "weight", odd)
        for _ in range(2):
            mod.global_unstructured(targets(model), pruning_method=mod.L1Unstructured, amount=0.3)
    assert_same_model(ours, theirs)
    assert ours[0].weight_mask[0, 0] == 0.5 ** 4 and ours[0].weight_mask[0, 1] == 2.0 ** 4


def test_sharded_tensors_take_torchs_path():
    """On FSDP2's DTensor weights (2 gloo ranks) the drop-in does what torch's module does."""
    from tests.helpers.dist import run_ranks
    from tests.helpers.dist_workers import dropin_on_dtensors
    case = {"seed": 0, "dims": [(6, 8), (8, 4)], "amount": 0.3}
    for result in run_ranks(2, dropin_on_dtensors, case):
        for call in ("local", "global"):
            ours, theirs = result["ours", call], result["torch", call]
            assert type(ours) is type(theirs), (call, ours, theirs)
            assert ours == theirs if isinstance(ours, str) else torch.equal(ours, theirs), call
