"""prune_(scope=NM(n, m)) on bad input (docs/semantics.md, "N:M selection"): the front door
and the reference raise the same one-line error naming the list and the index, with nothing
written; NaN, an input dimension that is not a multiple of m, bad n or m, the list checks; the
op's fake kernel and a compiled call."""
from __future__ import annotations

import re

import pytest
import torch

import lth_fast
from lth_fast import NM, reference

from tests.helpers.ops import bits
from tests.helpers.prune import nm_inputs
from tests.helpers.targets import DTYPES


def raises_same(weights, masks, exc, needles, rule=(2, 4), **kwargs):
    """The front door with scope=NM(*rule) and the reference with scope="nm", n=, m= raise the
    same one-line error, naming the list and index, with nothing written."""
    calls = {"lth_fast.prune_": lambda w, mk: lth_fast.prune_(w, mk, scope=NM(*rule), **kwargs),
             "reference.prune_": lambda w, mk: reference.prune_(
                 w, mk, scope="nm", n=rule[0], m=rule[1], **kwargs)}
    for where, impl in calls.items():
        w_bits = [bits(w).clone() for w in weights if isinstance(w, torch.Tensor)]
        copies = {}  # one copy per distinct tensor: a mask given twice stays one tensor
        mine = [copies.setdefault(id(mk), mk.clone()) if isinstance(mk, torch.Tensor) else mk
                for mk in masks]
        with pytest.raises(exc) as info:
            impl(weights, mine)
        message = str(info.value)
        assert "\n" not in message.strip(), f"not one line: {message!r}"
        for needle in needles:
            assert needle in message, f"{where}: {needle!r} not in {message!r}"
        for i, (a, b) in enumerate(zip(mine, masks)):
            assert torch.equal(a, b), f"{where}: masks[{i}] written before raising"
        assert all(torch.equal(bits(w), b) for w, b in
                   zip([w for w in weights if isinstance(w, torch.Tensor)], w_bits))


@pytest.mark.parametrize("where", ["alive", "dead", "last tensor"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_rejected_with_nothing_written(target, dtype, where, gen):
    weights, masks = nm_inputs(gen)
    weights = [w.to(dtype) for w in weights]
    i = 2 if where == "last tensor" else 1
    flat = weights[i].view(-1)
    pos = flat.numel() - 1
    masks[i].view(-1)[pos] = where != "dead"
    flat[pos] = float("nan")
    weights = [w.to(target) for w in weights]
    masks = [mk.to(target) for mk in masks]
    raises_same(weights, masks, ValueError, [f"weights[{i}] contains NaN"])


def test_input_dimension_not_a_multiple_of_m(target):
    weights = [torch.randn(3, 8), torch.randn(2, 6, 3, 3), torch.randn(4)]
    masks = [torch.ones(w.shape, dtype=torch.bool) for w in weights]
    weights = [w.to(target) for w in weights]
    masks = [mk.to(target) for mk in masks]
    raises_same(weights, masks, ValueError,
                ["weights[1] has shape [2, 6, 3, 3]", "(6 entries)", "m = 4"])
    raises_same(weights[2:], masks[2:], ValueError, ["weights[0] has shape [4]", "m = 8"],
                rule=(2, 8))


@pytest.mark.parametrize("n,m", [(0, 4), (5, 4), (-1, 4), (2, 65), (65, 65), (0, 0)])
def test_bad_n_or_m(target, n, m, gen):
    """NM refuses them when it is made; the op and the reference, which take n and m as they
    are, refuse them too, with nothing written."""
    with pytest.raises(ValueError, match=rf"NM\(n, m\) needs 1 <= n <= m <= 64, got n={n}, m={m}$"):
        NM(n, m)
    weights, masks = nm_inputs(gen)
    weights = [w.to(target) for w in weights]
    for where, impl in {"op": torch.ops.lth_fast.prune_nm_.default,
                        "reference": lambda w, mk, n, m: reference.prune_(w, mk, scope="nm",
                                                                          n=n, m=m)}.items():
        mine = [mk.clone().to(target) for mk in masks]
        with pytest.raises(ValueError, match=rf"1 <= n <= m <= 64, got n={n}, m={m}"):
            impl(weights, mine, n, m)
        assert all(torch.equal(a.cpu(), b) for a, b in zip(mine, masks)), where


def test_argument_errors(gen):
    """The list checks are the op's (front door and reference alike); how the front door reads
    its arguments (NM with an amount, a bad scope, n= and m=) is in test_nm.py."""
    weights, masks = nm_inputs(gen)
    raises_same(weights, masks[:2], ValueError, ["masks has 2 tensors but weights has 3"])
    raises_same(weights, [masks[0], masks[1].float(), masks[2]], TypeError,
                ["masks[1] must be"])
    raises_same(weights, [masks[0], masks[1], masks[2][:8]], ValueError,
                ["masks[2] has shape [8]"])
    raises_same([weights[0], weights[1].double(), weights[2]], masks, TypeError,
                ["weights[1] has dtype"])
    raises_same([weights[0].int()], masks[:1], TypeError, ["weights[0] must be float32"])
    raises_same([weights[0].t()], [masks[0].t().contiguous()], ValueError,
                ["weights[0] must be contiguous"])
    raises_same([weights[0], weights[0]], [masks[0], masks[0]], ValueError,
                ["masks[0] and masks[1] overlap in memory"])


def test_reference_reads_its_own_arguments(gen):
    """The reference keeps the op's spelling, scope="nm", n=, m=, and its checks of it."""
    weights, masks = nm_inputs(gen)
    for kwargs, exc, needle in [
            (dict(amount=0.5, scope="nm"), ValueError, "an N:M rule takes n and m, not an amount"),
            (dict(amount=0, scope="nm"), ValueError, "an N:M rule takes n and m, not an amount"),
            (dict(), TypeError, "scope='global' needs an amount"),
            (dict(scope="layer"), TypeError, "scope='layer' needs an amount"),
            (dict(amount=0.5, n=1, m=4), ValueError, "n and m are for scope='nm'"),
            (dict(amount=0.5, scope="rows"), ValueError,
             "scope must be 'global', 'layer' or 'nm'"),
            (dict(scope="nm", n=2.0), TypeError, "n must be an int"),
            (dict(scope="nm", m=True), TypeError, "m must be an int")]:
        mine = [mk.clone() for mk in masks]
        with pytest.raises(exc, match=re.escape(needle)):
            reference.prune_(weights, mine, **kwargs)
        assert all(torch.equal(a, b) for a, b in zip(mine, masks))


def test_op_and_fake_kernel(gen):
    weights, masks = nm_inputs(gen)
    op = torch.ops.lth_fast.prune_nm_.default
    out = op(weights, [mk.clone() for mk in masks], 2, 4)
    assert out.dtype == torch.long and out.shape == (3, 2)
    meta_w = [w.to("meta") for w in weights]
    meta_m = [mk.to("meta") for mk in masks]
    fake = op(meta_w, meta_m, 2, 4)
    assert fake.shape == (3, 2) and fake.device.type == "meta"
    with pytest.raises(ValueError, match="not a multiple of m = 8"):
        op(meta_w, meta_m, 2, 8)
    torch.library.opcheck(op, (weights, [mk.clone() for mk in masks], 2, 4))


def test_compiled_call(gen):
    weights, masks = nm_inputs(gen)
    want = [mk.clone() for mk in masks]
    lth_fast.prune_(weights, want, scope=NM(2, 4))

    @torch.compile(fullgraph=True, backend="eager")
    def step(ws, ms):
        return torch.ops.lth_fast.prune_nm_.default(ws, ms, 2, 4)

    got = [mk.clone() for mk in masks]
    step(weights, got)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
