"""The registered op under torch.library.opcheck and torch.compile(fullgraph=True)."""
from __future__ import annotations

import pytest
import torch

import lth_fast
from lth_fast.ops import prune_raw

from tests.helpers.ops import random_masks

OP = torch.ops.lth_fast.prune_.default


def data(gen, dtype=torch.float32, shapes=((10, 7), (33,), (4, 4, 4)), device="cpu"):
    weights = [torch.randn(s, generator=gen).to(dtype).to(device) for s in shapes]
    masks = [m.to(device) for m in random_masks(weights, gen)]
    return weights, masks


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("fractions,counts,layerwise", [
    ([0.2], [], False), ([0.2], [], True), ([], [7], False), ([], [1, 2, 3], True),
    ([0.1, 0.5, 1.0], [], True)])
def test_opcheck(target, dtype, fractions, counts, layerwise, gen):
    weights, masks = data(gen, dtype, device=target)
    torch.library.opcheck(OP, (weights, masks, fractions, counts, layerwise))


def test_opcheck_zero_size(gen):
    weights = [torch.empty(0), torch.randn(5, generator=gen), torch.empty(3, 0)]
    masks = [torch.ones(w.shape, dtype=torch.bool) for w in weights]
    torch.library.opcheck(OP, (weights, masks, [0.4], [], False))


@pytest.mark.parametrize("fractions,counts,layerwise", [
    ([0.4], [], True), ([0.0], [], False), ([], [0], False), ([0.0, 0.5, 0.5], [], True)])
def test_opcheck_nothing_pruned(fractions, counts, layerwise, gen):
    """A ranking that prunes nothing reports threshold NaN. opcheck's eager-vs-AOT comparison
    (assert_close, equal_nan=False) cannot accept NaN outputs, so that one check is replaced
    by a compiled-vs-eager comparison that treats NaN as equal."""
    weights = [torch.empty(0), torch.randn(5, generator=gen), torch.empty(3, 0)]
    masks = [torch.ones(w.shape, dtype=torch.bool) for w in weights]
    args = (weights, masks, fractions, counts, layerwise)
    torch.library.opcheck(OP, args, test_utils=(
        "test_schema", "test_autograd_registration", "test_faketensor"))

    def fn(w, m):
        return prune_raw(w, m, fractions, counts, layerwise)

    torch._dynamo.reset()
    eager_m = [m.clone() for m in masks]
    comp_m = [m.clone() for m in masks]
    es, et = fn(weights, eager_m)
    cs, ct = torch.compile(fn, fullgraph=True)(weights, comp_m)
    assert torch.equal(es, cs)
    assert bool(torch.isnan(et).any()), "the case should have a ranking that prunes nothing"
    torch.testing.assert_close(ct, et, rtol=0, atol=0, equal_nan=True)
    assert all(torch.equal(a, b) for a, b in zip(comp_m, eager_m))


def eager_and_compiled(fn, weights, masks, **compile_kwargs):
    torch._dynamo.reset()
    eager_m = [m.clone() for m in masks]
    comp_m = [m.clone() for m in masks]
    eager = fn(weights, eager_m)
    compiled = torch.compile(fn, **compile_kwargs)(weights, comp_m)
    for i, (a, b) in enumerate(zip(comp_m, eager_m)):
        assert torch.equal(a, b), f"masks[{i}]: compiled != eager"
    assert any(not torch.equal(a, m) for a, m in zip(eager_m, masks)), "nothing was pruned"
    return eager, compiled


@pytest.mark.parametrize("layerwise", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_compile_fullgraph_raw(target, layerwise, dtype, gen):
    weights, masks = data(gen, dtype, device=target)

    def fn(w, m):
        return prune_raw(w, m, [0.3], [], layerwise)

    (es, et), (cs, ct) = eager_and_compiled(fn, weights, masks, fullgraph=True)
    assert torch.equal(es, cs)
    torch.testing.assert_close(ct, et, rtol=0, atol=0, equal_nan=True)


def test_compile_fullgraph_raw_in_a_graph(target, gen):
    """The mutation is ordered inside the graph: ops after the prune see the new masks."""
    weights, masks = data(gen, device=target)

    def fn(w, m):
        scores = [x.abs() * 2 for x in w]  # exact scaling: the same ranking as |w|
        stats, _ = prune_raw(scores, m, [], [20], False)
        return [x * y for x, y in zip(w, m)], stats

    (e_out, e_stats), (c_out, c_stats) = eager_and_compiled(fn, weights, masks, fullgraph=True)
    assert torch.equal(e_stats, c_stats)
    assert int(e_stats[0, 1]) == 20
    for a, b in zip(e_out, c_out):
        assert torch.equal(a, b)
    direct = [m.clone() for m in masks]  # the same ranking as pruning |w| itself
    lth_fast.prune_(weights, direct, 20)
    for i, (out, w, m) in enumerate(zip(e_out, weights, direct)):
        assert torch.equal(out, w * m), f"output {i} is not w * (pruned mask)"


def test_compile_fullgraph_raw_new_shapes(gen):
    """A second call with other sizes recompiles (or runs dynamic) and stays exact."""
    def fn(w, m):
        return prune_raw(w, m, [0.5], [], False)

    compiled = torch.compile(fn, fullgraph=True)
    torch._dynamo.reset()
    for shapes in [((10,), (20,)), ((300,), (7, 7)), ((1000,), (3,))]:
        weights, masks = data(gen, shapes=shapes)
        a = [m.clone() for m in masks]
        b = [m.clone() for m in masks]
        compiled(weights, a)
        fn(weights, b)
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_compile_prune_api_with_graph_breaks(target, gen):
    """lth_fast.prune_ returns PruneStats built from host values (Tensor.tolist), which
    fullgraph cannot trace; with graph breaks allowed it must still match eager."""
    weights, masks = data(gen, device=target)

    def fn(w, m):
        return lth_fast.prune_(w, m, 0.4, scope="layer")

    eager, compiled = eager_and_compiled(fn, weights, masks)
    assert eager == compiled
