"""The memory rule (docs/semantics.md, "Errors and aliasing") on every op, fast and reference:
a tensor an op writes shares no byte with another tensor of the call (checked on byte ranges,
so overlapping views count), except a read-only tensor that is exactly it; the error names both
positions and nothing is written. Also: a meta tensor among real ones is refused by name
(the dispatcher sends such calls to the fake kernels)."""
from __future__ import annotations

import pytest
import torch

import lth_fast
from lth_fast import reference

from tests.helpers.ops import bits

IMPLS = [pytest.param(lth_fast, id="fast"), pytest.param(reference, id="reference")]


def _mask(n=6):
    return torch.ones(n, dtype=torch.bool)


def _snapshot(*lists):
    return [bits(t).clone() for lst in lists for t in lst]


def _same(before, *lists):
    return all(torch.equal(a, bits(b)) for a, b in zip(before, [t for lst in lists for t in lst]))


def _calls(impl):
    """(name, call) pairs; each call builds its lists and returns (run, written lists, message)."""
    def prune_same_mask():
        m = _mask()
        masks = [m, m]
        return (lambda: impl.prune_([torch.randn(6), torch.randn(6)], masks, 0.5, scope="layer"),
                [masks], r"prune_: masks\[0\] and masks\[1\] overlap in memory")

    def prune_overlapping_mask_views():
        buf = torch.ones(10, dtype=torch.bool)
        masks = [buf[:6], buf[4:10]]
        return (lambda: impl.prune_([torch.randn(6), torch.randn(6)], masks, 2),
                [masks], r"prune_: masks\[0\] and masks\[1\] overlap in memory")

    def prune_mask_inside_a_weight():
        w = torch.randn(6)
        masks = [w.view(torch.uint8)[:6].view(torch.bool)]
        return (lambda: impl.prune_([w], masks, 0),
                [masks], r"prune_: weights\[0\] and masks\[0\] overlap in memory")

    def sgd_param_twice():
        p = torch.randn(6)
        params = [p, p]
        return (lambda: impl.masked_sgd_(params, [torch.randn(6)] * 2, [_mask()] * 2, [], lr=0.1),
                [params], r"masked_sgd_: params\[0\] and params\[1\] overlap in memory")

    def sgd_buffer_is_a_param():
        params = [torch.randn(6), torch.randn(6)]
        bufs = [torch.randn(6), params[0]]
        return (lambda: impl.masked_sgd_(params, [torch.randn(6)] * 2, [_mask()] * 2, bufs,
                                         lr=0.1, momentum=0.9),
                [params, bufs], r"masked_sgd_: params\[0\] and momentum_buffers\[1\] overlap")

    def sgd_grad_half_over_a_param():
        buf = torch.randn(9)
        params = [buf[:6]]
        return (lambda: impl.masked_sgd_(params, [buf[3:9]], [_mask()], [], lr=0.1),
                [params], r"masked_sgd_: params\[0\] and grads\[0\] overlap in memory")

    def adam_moments_shared():
        params = [torch.randn(6)]
        m = torch.zeros(6)
        return (lambda: impl.masked_adam_(params, [torch.randn(6)], [_mask()], [m], [m],
                                          lr=0.1, step=1),
                [params, [m]], r"masked_adam_: exp_avgs\[0\] and exp_avg_sqs\[0\] overlap")

    def adam_max_is_a_moment():
        params, a, v = [torch.randn(6)], [torch.zeros(6)], [torch.zeros(6)]
        return (lambda: impl.masked_adam_(params, [torch.randn(6)], [_mask()], a, v, lr=0.1,
                                          step=1, max_exp_avg_sqs=v),
                [params, a, v], r"masked_adam_: exp_avg_sqs\[0\] and max_exp_avg_sqs\[0\]")

    def rewind_snapshot_of_another_param():
        """Two overlapping pairs: the first by position is named, wherever the allocator put
        the tensors."""
        params = [torch.randn(6), torch.randn(6)]
        return (lambda: impl.rewind_(params, [params[1], params[0]], [_mask()] * 2),
                [params], r"rewind_: params\[0\] and snapshot\[1\] overlap in memory")

    def rewind_crossed_views():
        """The same, with params[1] at the lower address: still params[0] is named."""
        buf = torch.randn(12)
        params = [buf[6:], buf[:6]]
        return (lambda: impl.rewind_(params, [params[1], params[0]], [_mask()] * 2),
                [params], r"rewind_: params\[0\] and snapshot\[1\] overlap in memory")

    return [(f.__name__, f) for f in (prune_same_mask, prune_overlapping_mask_views,
                                      prune_mask_inside_a_weight, sgd_param_twice,
                                      sgd_buffer_is_a_param, sgd_grad_half_over_a_param,
                                      adam_moments_shared, adam_max_is_a_moment,
                                      rewind_snapshot_of_another_param, rewind_crossed_views)]


CASES = [name for name, _ in _calls(reference)]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("impl", IMPLS)
def test_overlap_is_refused_and_nothing_written(impl, case):
    run, written, message = dict(_calls(impl))[case]()
    before = _snapshot(*written)
    with pytest.raises(ValueError, match=message):
        run()
    assert _same(before, *written), "a failing call wrote"


@pytest.mark.parametrize("impl", IMPLS)
def test_exact_read_only_aliases_are_allowed(impl, gen):
    """rewind_(params, params, masks) zeroes the pruned entries in place; a gradient that is
    its own param steps as a copy of it would."""
    p = torch.randn(7, generator=gen)
    m = torch.rand(7, generator=gen) < 0.5
    want = torch.where(m, p, torch.zeros(()))
    impl.rewind_([p], [p], [m])
    assert torch.equal(p, want)
    q = torch.randn(7, generator=gen)
    q_copy = q.clone()
    impl.masked_sgd_([q], [q], [m], [], lr=0.1)
    reference.masked_sgd_([q_copy], [q_copy.clone()], [m], [], lr=0.1)
    assert torch.equal(q, q_copy)


@pytest.mark.parametrize("op", ["prune_", "masked_sgd_", "masked_adam_", "rewind_"])
def test_a_meta_tensor_among_real_ones_is_refused(op):
    w, g, meta_mask = torch.randn(5), torch.randn(5), torch.ones(5, dtype=torch.bool,
                                                                  device="meta")
    calls = {
        "prune_": lambda: lth_fast.prune_([w], [meta_mask], 0.4),
        "masked_sgd_": lambda: lth_fast.masked_sgd_([w], [g], [meta_mask], [], lr=0.1),
        "masked_adam_": lambda: lth_fast.masked_adam_([w], [g], [meta_mask], [torch.zeros(5)],
                                                      [torch.zeros(5)], lr=0.1, step=1),
        "rewind_": lambda: lth_fast.rewind_([w], [g], [meta_mask]),
    }
    before = w.clone()
    with pytest.raises(ValueError, match=r"masks\[0\] is on meta but (weights|params)\[0\] is on cpu"):
        calls[op]()
    assert torch.equal(w, before)
