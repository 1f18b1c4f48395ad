"""MaskedSGD, MaskedAdam and MaskedAdamW against torch's own optimizer test lists
(torch.testing._internal.common_optimizers, read at test time, not copied): every configuration
torch's optimizer tests use on CPU is bit for bit torch's optimizer without masks, and torch's
optimizer followed by masking with masks (each step compared, from the same state, with torch's
step in float64: within 4 ulp of the magnitudes of its terms; pruned entries exactly 0); every construction error those tests expect is
raised with the same type and message."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch

from lth_fast import MaskedAdam, MaskedAdamW, MaskedSGD

from tests.helpers.ops import one_thread  # noqa: F401
from tests.helpers.training import (adam_weight_scale, exactly_like_torch, lockstep, mlp,
                                    sgd_weight_scale, weight_masks)

common = pytest.importorskip("torch.testing._internal.common_optimizers",
                             reason="torch's optimizer test lists need the expecttest package")

ADAM_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
CASES = {  # ours, torch's, torch's configurations, torch's error inputs, state keys, weight scale
    "sgd": (MaskedSGD, torch.optim.SGD, common.optim_inputs_func_sgd,
            common.optim_error_inputs_func_sgd, ("momentum_buffer",), sgd_weight_scale),
    "adam": (MaskedAdam, torch.optim.Adam, common.optim_inputs_func_adam,
             common.optim_error_inputs_func_adam, ADAM_STATE, adam_weight_scale),
    "adamw": (MaskedAdamW, torch.optim.AdamW, common.optim_inputs_func_adamw,
              common.optim_error_inputs_func_adamw, ADAM_STATE, adam_weight_scale),
}
ULPS = 4  # one step's difference from torch's step in float64 (helpers.training.lockstep)
STEPS = 25


def configs():
    for name, (_, _, inputs, _, _, _) in CASES.items():
        for inp in inputs("cpu", torch.float32):
            yield pytest.param(name, inp.kwargs, id=f"{name}-{inp.desc}")


def errors():
    for name, (_, _, _, error_inputs, _, _) in CASES.items():
        for e in error_inputs("cpu", torch.float32):
            if e.error_on == common.OptimizerErrorEnum.CONSTRUCTION_ERROR:
                yield pytest.param(name, e, id=f"{name}-{e.optimizer_error_input.desc}")


def test_the_lists_are_there():
    assert len(list(configs())) >= 15 and len(list(errors())) >= 15


def _pair(name, kwargs, masks_of=None):
    ours_cls, torch_cls, _, _, _, _ = CASES[name]
    ref_model, model = mlp().double() if masks_of else mlp(), mlp()
    masks = masks_of(model) if masks_of else None
    opt = ours_cls(model.parameters(), masks=masks, **copy.deepcopy(kwargs))
    ref = torch_cls(ref_model.parameters(), **copy.deepcopy(kwargs))
    return (model, opt), (ref_model, ref), masks


@pytest.mark.parametrize("name,kwargs", list(configs()))
def test_without_masks_bit_identical(name, kwargs):
    ours, theirs, _ = _pair(name, kwargs)
    exactly_like_torch(ours, theirs, STEPS, CASES[name][4])


@pytest.mark.parametrize("name,kwargs", list(configs()))
def test_with_masks_torch_then_mask(name, kwargs, gen):
    ours, theirs, masks = _pair(name, kwargs, lambda m: weight_masks(m, gen))
    lockstep(ours, theirs, masks, STEPS, ULPS, CASES[name][4], CASES[name][5],
             sched_every=10**9)


@pytest.mark.parametrize("name,error", list(errors()))
def test_construction_errors(name, error):
    ours_cls, torch_cls = CASES[name][:2]
    inp = error.optimizer_error_input
    for cls in (torch_cls, ours_cls):  # torch's own first: the list itself is what we expect
        if issubclass(error.error_type, Warning):
            with pytest.warns(error.error_type, match=error.error_regex):
                cls(inp.params, **inp.kwargs)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with pytest.raises(error.error_type, match=error.error_regex):
                    cls(inp.params, **inp.kwargs)
