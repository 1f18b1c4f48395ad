"""lth_fast.integrations.lightning.ModelPruning against Lightning's own ModelPruning, the
oracle, in real Trainer.fit runs from the same seed: the same masks and weights after every
epoch's pruning (global and local, L1 and random, with the lottery-ticket reset and resampled
parameters, made permanent or not), the fused selection doing the L1 and random work, and
Lightning's code doing the structured methods."""
from __future__ import annotations

import pytest
import torch

L = pytest.importorskip("lightning")

from lightning.pytorch.callbacks import ModelPruning as LightningModelPruning  # noqa: E402

import lth_fast.nn.utils.prune as lp  # noqa: E402
from lth_fast.integrations.lightning import ModelPruning  # noqa: E402

from tests.helpers.lightning import TinyNet, loader, trainer  # noqa: E402


def fit(cls, epochs=3, **kw):
    torch.manual_seed(0)
    model = TinyNet()
    torch.manual_seed(1)
    trainer(epochs, [cls(**kw)]).fit(model, loader())
    return model


def assert_same(ours, theirs):
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("pruning_fn", ["l1_unstructured", "random_unstructured"])
@pytest.mark.parametrize("use_global_unstructured", [True, False])
@pytest.mark.parametrize("lth, resample", [(False, False), (True, False), (True, True)])
def test_equals_lightnings_model_pruning(pruning_fn, use_global_unstructured, lth, resample,
                                         monkeypatch):
    kw = dict(pruning_fn=pruning_fn, amount=0.3, use_global_unstructured=use_global_unstructured,
              use_lottery_ticket_hypothesis=lth, resample_parameters=resample,
              make_pruning_permanent=False)
    theirs = fit(LightningModelPruning, **kw)
    calls = []
    real = lp.prune_
    monkeypatch.setattr(lp, "prune_", lambda *a, **k: calls.append(1) or real(*a, **k))
    ours = fit(ModelPruning, **kw)
    assert_same(ours, theirs)
    # a fused selection per pruning: per epoch one (global) or one per tensor with k > 0
    # (local: the 3-entry bias goes 3 -> 2 -> 1, and round(0.3 * 1) is 0)
    assert len(calls) == (3 if use_global_unstructured else 3 * 6 - 1)
    masks = [b for n, b in ours.named_buffers() if n.endswith("_mask")]
    pruned = sum(int((m == 0).sum()) for m in masks) / sum(m.numel() for m in masks)
    assert abs(pruned - (1 - 0.7 ** 3)) < 0.01


@pytest.mark.parametrize("make_pruning_permanent", [True, False])
def test_callable_amount_apply_pruning_and_permanence(make_pruning_permanent):
    kw = dict(pruning_fn="l1_unstructured", amount=lambda epoch: 0.1 * (epoch + 1),
              apply_pruning=lambda epoch: epoch != 1, use_global_unstructured=True,
              make_pruning_permanent=make_pruning_permanent, verbose=2)
    ours, theirs = fit(ModelPruning, **kw), fit(LightningModelPruning, **kw)
    assert_same(ours, theirs)
    assert hasattr(ours.net[0], "weight_orig") != make_pruning_permanent


def test_structured_methods_run_lightnings_code(monkeypatch):
    monkeypatch.setattr(lp, "prune_", lambda *a, **k: pytest.fail("fused path ran"))
    kw = dict(pruning_fn="ln_structured", pruning_dim=0, pruning_norm=1, amount=0.25,
              parameter_names=["weight"], make_pruning_permanent=False,
              use_global_unstructured=False)
    assert_same(fit(ModelPruning, **kw), fit(LightningModelPruning, **kw))


def test_checkpoint_restores_into_a_fresh_model(tmp_path):
    torch.manual_seed(0)
    model = TinyNet()
    t = trainer(2, [ModelPruning("l1_unstructured", amount=0.5)], enable_checkpointing=True,
                default_root_dir=tmp_path)
    t.fit(model, loader())
    path = tmp_path / "last.ckpt"
    t.save_checkpoint(path)
    fresh = TinyNet.load_from_checkpoint(path)
    x = torch.randn(5, 10)
    assert torch.equal(fresh(x), model(x))
    ps = list(fresh.parameters())
    assert sum(int((p == 0).sum()) for p in ps) / sum(p.numel() for p in ps) == pytest.approx(
        0.75, abs=0.01)
