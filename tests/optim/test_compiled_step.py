"""A training step under torch.compile: MaskedAdamW's step passes its step counts and lr to the
fused op as tensors (lth_fast.ops.tensor_scalars), so after the warm-up steps, which create the
optimizer state, nothing compiles again: not a new step count, not a scheduled lr (given as a
tensor). The recompiles are counted by Dynamo itself (error_on_recompile and its frame
counters), not by wall time. The compiled step's weights equal the eager step's bit for bit."""
from __future__ import annotations

import copy

import pytest
import torch
import torch._dynamo
from torch import nn
from torch._dynamo.utils import counters

from lth_fast import MaskedAdamW, Pruner
from lth_fast.ops.tensor_scalars import masked_adam_tensors_

WARMUP = 2  # step 1 creates the state; step 2 sees it


def _model(bias):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32, bias=bias), nn.GELU(), nn.Linear(32, 4, bias=bias))


def _batches(n):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 16, generator=g), torch.randint(0, 4, (8,), generator=g))
            for _ in range(n)]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def _train(model, opt, step, batches, sched=None):
    frames = None
    for i, (x, y) in enumerate(batches):
        if i == WARMUP:
            torch._dynamo.config.error_on_recompile = True
            frames = counters["frames"]["total"]
        try:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            step()
            if sched is not None:
                sched.step()
        finally:
            torch._dynamo.config.error_on_recompile = False
    return frames


def test_compiled_step_never_recompiles_and_equals_eager(isa):
    model = _model(bias=False)      # every parameter masked: the whole step is lth_fast's
    pruner = Pruner(model)
    pruner.prune(0.5)
    ref = copy.deepcopy(model)
    ref_pruner = Pruner(ref)
    ref_pruner.load_state_dict(pruner.state_dict())
    lr = torch.tensor(1e-2, dtype=torch.float64)   # scheduled without recompiling
    opt = MaskedAdamW(model.parameters(), lr=lr, weight_decay=0.1, masks=pruner)
    ref_opt = MaskedAdamW(ref.parameters(), lr=1e-2, weight_decay=0.1, masks=ref_pruner)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=2, gamma=0.5)
    batches = _batches(8)
    compiled = torch.compile(opt.step)
    frames = _train(model, opt, compiled, batches, sched)
    assert counters["frames"]["total"] == frames      # no frame compiled after the warm-up
    # the one break: the LR scheduler's wrapper of opt.step, which Dynamo never traces (its
    # file is skipped); the step inside it compiles as a frame of its own
    assert all("lr_scheduler.py" in reason for reason in counters["graph_break"])
    _train(ref, ref_opt, ref_opt.step, batches, ref_sched)
    for (n, p), q in zip(model.named_parameters(), ref.parameters()):
        assert torch.equal(p, q), f"{n}: the compiled step differs from the eager one"
        assert not p[~pruner.masks[n]].any()
    for p, q in zip(model.parameters(), ref.parameters()):
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt.state[p][k], ref_opt.state[q][k]), k


def test_compiled_model_and_step_with_unmasked_params():
    model = _model(bias=True)       # biases take torch's own (compiled) AdamW step
    pruner = Pruner(model)
    pruner.prune(0.6)
    opt = MaskedAdamW(model.parameters(), lr=1e-2, masks=pruner)
    compiled_model = torch.compile(model)
    compiled_step = torch.compile(opt.step)
    frames = _train(compiled_model, opt, compiled_step, _batches(6))
    assert counters["frames"]["total"] == frames
    for n, p in model.named_parameters():
        if n in pruner.masks:
            assert not p[~pruner.masks[n]].any()
            assert not opt.state[p]["exp_avg"][~pruner.masks[n]].any()


def test_tensor_scalar_op_errors_name_what_is_wrong():
    p = [torch.zeros(4)]
    g = [torch.ones(4)]
    m = [torch.ones(4, dtype=torch.bool)]
    state = [[torch.zeros(4)], [torch.zeros(4)]]
    with pytest.raises(ValueError, match="lr must be a 0-dim CPU tensor"):
        masked_adam_tensors_(p, g, m, *state, lr=torch.tensor([1e-3]), steps=[torch.tensor(1.)])
    with pytest.raises(ValueError, match="step counts differ"):
        masked_adam_tensors_(p * 2, g * 2, m * 2, [torch.zeros(4), torch.zeros(4)],
                             [torch.zeros(4), torch.zeros(4)], lr=torch.tensor(1e-3),
                             steps=[torch.tensor(1.), torch.tensor(2.)])
    assert not p[0].any()   # nothing written


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_step_on_cuda_makes_no_host_sync():
    model = _model(bias=False).cuda()
    pruner = Pruner(model)
    pruner.prune(0.5)
    opt = MaskedAdamW(model.parameters(), lr=torch.tensor(1e-2, dtype=torch.float64),
                      masks=pruner)
    compiled = torch.compile(opt.step)
    batches = [(x.cuda(), y.cuda()) for x, y in _batches(4)]
    _train(model, opt, compiled, batches[:WARMUP])
    torch.cuda.set_sync_debug_mode("error")
    try:
        _train(model, opt, compiled, batches[WARMUP:])
    finally:
        torch.cuda.set_sync_debug_mode(0)
