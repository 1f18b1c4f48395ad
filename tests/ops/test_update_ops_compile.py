"""masked_sgd_ and rewind_ under torch.library.opcheck and torch.compile(fullgraph=True)."""
from __future__ import annotations

import pytest
import torch

import lth_fast

from tests.helpers.ops import random_masks

SHAPES = ((10, 7), (33,), (4, 4, 4))


def data(gen, dtype, device, lists):
    return [[torch.randn(s, generator=gen).to(dtype).to(device) for s in SHAPES]
            for _ in range(lists)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("momentum,init", [(0.0, False), (0.9, True), (0.9, False)])
def test_opcheck_masked_sgd(target, dtype, momentum, init, gen):
    params, grads, bufs = data(gen, dtype, target, 3)
    masks = [m.to(target) for m in random_masks(params, gen)]
    bufs = bufs if momentum else []
    torch.library.opcheck(torch.ops.lth_fast.masked_sgd_.default,
                          (params, grads, masks, bufs, 0.1, momentum, 0.0, 1e-4, False, False,
                           init))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_opcheck_rewind(target, dtype, gen):
    params, snapshot = data(gen, dtype, target, 2)
    masks = [m.to(target) for m in random_masks(params, gen)]
    torch.library.opcheck(torch.ops.lth_fast.rewind_.default, (params, snapshot, masks))


def test_compiled_training_step_matches_eager(target, gen):
    """A step written with the two ops compiles without graph breaks and equals eager."""
    def step(params, grads, masks, bufs, snapshot):
        lth_fast.masked_sgd_(params, grads, masks, bufs, lr=0.05, momentum=0.9,
                             weight_decay=1e-3)
        lth_fast.rewind_(snapshot, params, masks)  # snapshot := params * masks

    params, grads, bufs, snapshot = data(gen, torch.float32, target, 4)
    masks = [m.to(target) for m in random_masks(params, gen)]
    eager = [[t.clone() for t in lst] for lst in (params, grads, masks, bufs, snapshot)]
    step(*eager)
    compiled = torch.compile(step, fullgraph=True)
    compiled(params, grads, masks, bufs, snapshot)
    for got, want in zip((params, bufs, snapshot), (eager[0], eager[3], eager[4])):
        for g, w in zip(got, want):
            assert torch.equal(g, w)
