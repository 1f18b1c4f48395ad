"""IMPLevels, the callbacks' level engine: it validates through the IMP driver's rule
(lth_fast.pruning.rule) and steps through the driver's level step (lth_fast.pruning.level), so
every scope the driver has, N:M included, works inside a framework's loop."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lth_fast.imp import IMPConfig
from lth_fast.integrations.levels import IMPLevels


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 8))


def _train(model, opt, steps=5):
    for _ in range(steps):
        loss = model(torch.randn(12, 16)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_nm_scope_in_a_framework_loop():
    model = _net()
    imp = IMPLevels(levels=1, scope="nm", nm=(2, 4))
    pruner = imp.setup(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    imp.attach([opt])
    imp.take_rewind_point()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, opt)
    imp.next_level([opt])
    assert imp.level == 1 and not opt.state
    for n in pruner.names:   # 2 of every 4 consecutive input weights kept
        groups = pruner.masks[n].reshape(pruner.masks[n].shape[0], -1, 4)
        assert torch.equal(groups.sum(-1), torch.full(groups.shape[:2], 2))
    state = model.state_dict()
    for k, v in start.items():   # every tensor at the rewind point, pruned ones x mask
        want = v * pruner.masks[k] if k in pruner.masks else v
        assert torch.equal(state[k], want), k


@pytest.mark.parametrize("kw, message", [
    (dict(rate=1.0), r"rate must be in \[0, 1\), got 1.0"),
    (dict(scope="tile"), "scope must be one of"),
    (dict(scope="nm", nm=(5, 4)), r"N:M \(nm\[0\]:nm\[1\]\) needs 1 <= n <= m <= 64, got 5:4"),
    (dict(scope="nm", levels=2), "scope 'nm' reaches its 2:4 pattern in one level; give "
                                 "levels=1"),
])
def test_the_same_rules_as_the_driver(kw, message):
    with pytest.raises(ValueError, match="^LotteryTicket: " + message):
        IMPLevels(**{"levels": 1, **kw})
    flat = {"rate": "rate", "scope": "scope", "nm": None, "levels": "levels"}
    driver_kw = {flat[k]: v for k, v in kw.items() if flat[k]}
    if "nm" in kw:
        driver_kw.update(nm_n=kw["nm"][0], nm_m=kw["nm"][1])
    with pytest.raises(ValueError):   # the driver refuses the same settings
        IMPConfig.of(**driver_kw)
