"""A list argument that is not a list of tensors (None, a tensor, None items) gets the one-line
TypeError of docs/semantics.md ("Errors and aliasing") from every op's front door, naming the
op, the list and the index, with nothing written; not the dispatcher's schema dump."""
from __future__ import annotations

import pytest
import torch

import lth_fast
from lth_fast.ops.api import masked_adam_, masked_sgd_, rewind_, zero_pruned


def _lists():
    p = [torch.randn(8), torch.randn(4)]
    g = [torch.randn(8), torch.randn(4)]
    m = [torch.rand(8) > 0.5, torch.rand(4) > 0.5]
    return p, g, m


CASES = [
    ("rewind_", lambda p, g, m: rewind_(p, [g[0], None], m), "rewind_: snapshot[1] must be a tensor, got NoneType"),
    ("rewind_", lambda p, g, m: rewind_(p, None, m), "rewind_: snapshot must be a list of tensors, got NoneType"),
    ("rewind_", lambda p, g, m: rewind_(None, g, m), "rewind_: params must be a list of tensors, got NoneType"),
    ("zero_pruned", lambda p, g, m: zero_pruned(p, [m[0], None]), "rewind_: masks[1] must be a tensor, got NoneType"),
    ("masked_sgd_", lambda p, g, m: masked_sgd_(p, g, m, None, lr=0.1, momentum=0.9),
     "masked_sgd_: momentum_buffers must be a list of tensors, got NoneType"),
    ("masked_sgd_", lambda p, g, m: masked_sgd_(p, [None, g[1]], m, [], lr=0.1),
     "masked_sgd_: grads[0] must be a tensor, got NoneType"),
    ("masked_adam_", lambda p, g, m: masked_adam_(p, g, m, [torch.zeros(8), None], [torch.zeros(8), torch.zeros(4)], lr=0.1, step=1),
     "masked_adam_: exp_avgs[1] must be a tensor, got NoneType"),
    ("masked_adam_", lambda p, g, m: masked_adam_(p, g, m, [torch.zeros(8), torch.zeros(4)], None, lr=0.1, step=1),
     "masked_adam_: exp_avg_sqs must be a list of tensors, got NoneType"),
    ("prune_", lambda p, g, m: lth_fast.prune_(None, m, 0.5), "prune_: weights must be a list of tensors, got NoneType"),
    ("prune_", lambda p, g, m: lth_fast.prune_(p[0], m, 0.5), "prune_: weights must be a list of tensors, got Tensor"),
    ("prune_", lambda p, g, m: lth_fast.prune_(p, [None, m[1]], 0.5), "prune_: masks[0] must be a tensor, got NoneType"),
    ("prune_", lambda p, g, m: lth_fast.prune_(p, None, scope=lth_fast.NM(2, 4)), "prune_: masks must be a list of tensors, got NoneType"),
    ("mask_distance", lambda p, g, m: lth_fast.mask_distance(None, m), "mask_distance: masks_a must be a list of tensors, got NoneType"),
]


@pytest.mark.parametrize("op, call, message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_list_that_is_not_one_is_a_one_line_type_error(op, call, message):
    p, g, m = _lists()
    before = [t.clone() for t in p + m]
    with pytest.raises(TypeError) as e:
        call(p, g, m)
    assert str(e.value) == message
    assert all(torch.equal(a, b) for a, b in zip(before, p + m))   # nothing written
