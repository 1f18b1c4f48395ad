"""prune_ on adversarial inputs: heavy ties, signed zeros, infinities, denormals, odd sizes and
counts, existing masks with dead entries. Fast == reference, every device, ISA and dtype."""
from __future__ import annotations

import pytest
import torch

from tests.helpers.ops import random_masks
from tests.helpers.prune import run_and_compare
from tests.helpers.targets import DTYPES



def tiny(dtype):
    """The smallest positive subnormal of dtype, as a Python float."""
    return {torch.float32: 2.0 ** -149, torch.float16: 2.0 ** -24,
            torch.bfloat16: 2.0 ** -133, torch.float64: 2.0 ** -1074}[dtype]


def signs(shape, gen):
    return torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).double()


def pick(values, shape, gen):
    values = torch.tensor(values, dtype=torch.float64)
    return values[torch.randint(0, len(values), shape, generator=gen)]


def all_equal(dtype, gen):
    return [(torch.full(s, 0.75, dtype=torch.float64) * signs(s, gen)).to(dtype)
            for s in [(50, 40), (300,), (7,)]]


def few_distinct(dtype, gen):
    return [pick([0.5, -0.5, 1.0, -1.0, 2.0, -2.0], s, gen).to(dtype)
            for s in [(33, 17), (200,), (5, 5, 5), (1,), (64,)]]


def signed_zeros(dtype, gen):
    out = []
    for s in [(40, 25), (333,), (9,)]:
        w = pick([0.0, -0.0, 0.0, -0.0, 1.0], s, gen) * signs(s, gen)
        out.append(w.to(dtype))
    assert any(bool(torch.signbit(w[w == 0]).any()) for w in out)  # both zeros are present
    return out


def infinities(dtype, gen):
    inf = float("inf")
    out = []
    for s in [(30, 30), (257,), (3,)]:
        w = torch.randn(s, generator=gen, dtype=torch.float64)
        w = torch.where(torch.rand(s, generator=gen) < 0.3, pick([inf, -inf], s, gen), w)
        out.append(w.to(dtype))
    out.append(torch.tensor([inf, -inf, torch.finfo(dtype).max, -torch.finfo(dtype).max],
                            dtype=dtype))
    return out


def denormals(dtype, gen):
    t, normal = tiny(dtype), torch.finfo(dtype).tiny  # smallest subnormal, smallest normal
    return [(pick([0.0, t, 2 * t, 3 * t, 7 * t, normal, normal * 1.5], s, gen) * signs(s, gen))
            .to(dtype) for s in [(61, 11), (129,), (2,)]]


def one_element(dtype, gen):
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)
            for s in [(1,), (), (1, 1, 1), (1,), ()]]


def zero_size(dtype, gen):
    return [torch.randn(s, generator=gen, dtype=torch.float64).to(dtype)
            for s in [(0,), (10,), (3, 0), (4, 4), (0, 5), (0,)]]


def only_zero_size(dtype, gen):
    return [torch.empty(s, dtype=dtype) for s in [(0,), (2, 0)]]


def many_small(dtype, gen):
    sizes = torch.randint(1, 21, (200,), generator=gen).tolist()
    return [pick([0.0, -0.0, 0.25, -0.25, 1.0, 3.0], (n,), gen).to(dtype) for n in sizes]


CASES = [all_equal, few_distinct, signed_zeros, infinities, denormals, one_element, zero_size,
         only_zero_size, many_small]


def amounts(masks, gen):
    """(scope, amount) pairs for these masks: k = 0, k = alive, 1.0, fractions, per-tensor."""
    alive = [int(m.sum()) for m in masks]
    total = sum(alive)
    out = [("global", 0), ("global", 0.0), ("global", 0.5), ("global", 1.0), ("global", total),
           ("global", total // 2 + 1 if total else 0), ("layer", 0.3), ("layer", 1.0),
           ("layer", 0), ("layer", min(alive) if alive else 0), ("layer", alive),
           ("layer", [float(torch.rand((), generator=gen)) for _ in masks]),
           ("layer", [int(torch.randint(0, n + 1, (1,), generator=gen)) for n in alive])]
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_adversarial_values_and_shapes(target, dtype, case, gen):
    weights = case(dtype, gen)
    for alive_p in (1.0, 0.6):  # fresh masks, and masks with entries already dead
        masks = random_masks(weights, gen, alive_p)
        for scope, amount in amounts(masks, gen):
            run_and_compare(weights, masks, amount, scope, target)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_signed_zeros_tie_by_position(target, dtype):
    """-0.0 and +0.0 are one magnitude: the earliest alive positions die, whatever the sign."""
    w = [torch.tensor([0.0, -0.0, 1.0, -0.0, 0.0], dtype=dtype),
         torch.tensor([[-0.0, 0.0], [0.0, -0.0]], dtype=dtype)]
    m = [torch.tensor([True, False, True, True, True]), torch.ones(2, 2, dtype=torch.bool)]
    got, stats = run_and_compare(w, m, 5, "global", target)
    assert got[0].tolist() == [False, False, True, False, False]
    assert got[1].tolist() == [[False, False], [True, True]]
    assert stats.threshold == 0.0


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_inf_is_largest(target, dtype):
    w = [torch.tensor([float("inf"), 3.0, -float("inf"), torch.finfo(dtype).max], dtype=dtype)]
    m = [torch.ones(4, dtype=torch.bool)]
    got, stats = run_and_compare(w, m, 3, "global", target)  # 3, max, then the first inf
    assert got[0].tolist() == [False, False, True, False]
    assert stats.threshold == float("inf")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_denormals_rank_above_zero(target, dtype):
    t = tiny(dtype)
    w = [torch.tensor([2 * t, -t, 0.0, t, -0.0, 3 * t], dtype=dtype)]
    assert w[0][1].item() != 0.0, "the subnormal must be representable"
    m = [torch.ones(6, dtype=torch.bool)]
    got, stats = run_and_compare(w, m, 3, "global", target)
    assert got[0].tolist() == [True, False, False, True, False, True]
    assert stats.threshold == t


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_everything_dead(target, dtype, gen):
    weights = [torch.randn(s, generator=gen).to(dtype) for s in [(10, 3), (7,)]]
    masks = [torch.zeros(w.shape, dtype=torch.bool) for w in weights]
    for scope, amount in [("global", 0.5), ("global", 1.0), ("global", 0), ("layer", 0.7),
                          ("layer", [0, 0])]:
        got, stats = run_and_compare(weights, masks, amount, scope, target)
        assert stats.alive_before == 0 and stats.pruned == 0
        assert not any(g.any() for g in got)


def test_empty_lists(target):
    import lth_fast
    from lth_fast import reference
    for scope, amount in [("global", 0.5), ("global", 0), ("layer", 0.5), ("layer", [])]:
        fast = lth_fast.prune_([], [], amount, scope=scope)
        ref = reference.prune_([], [], amount, scope=scope)
        assert fast == ref
        assert (fast.alive_before, fast.pruned, fast.threshold) == (0, 0, None)


BIG = (1 << 17) + (1 << 15) + 3  # a sampled band (from 4,096 entries; after a miss, above the
                                 # counting engine's 2^17 too), not a multiple of any vector


def big_case(kind, dtype, gen):
    if kind == "all_equal":
        w = torch.full((BIG,), 1.5, dtype=torch.float64) * signs((BIG,), gen)
    elif kind == "mostly_zero":
        w = pick([0.0, -0.0] * 20 + [1.0], (BIG,), gen)
    elif kind == "many_inf":
        w = torch.randn(BIG, generator=gen, dtype=torch.float64)
        w[torch.rand(BIG, generator=gen) < 0.7] = float("inf")
        w = w * signs((BIG,), gen)
    else:  # denormals
        w = pick([0.0, tiny(dtype), 2 * tiny(dtype), 5 * tiny(dtype), 1.0], (BIG,), gen)
        w = w * signs((BIG,), gen)
    return w.to(dtype)


@pytest.mark.parametrize("kind", ["all_equal", "mostly_zero", "many_inf", "denormals"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_adversarial_sampled_path(target, dtype, kind, gen):
    w = big_case(kind, dtype, gen)
    small = torch.randn(1000, generator=gen).to(dtype)
    masks = random_masks([w, small], gen, 0.8)
    for scope, amount in [("global", 0.5), ("global", 0.95), ("layer", [12345, 77])]:
        run_and_compare([w, small], masks, amount, scope, target)


def carve(buf, sizes, gap, offset):
    """Contiguous views of `buf` at `offset`, `gap` elements apart (the gaps are guards)."""
    views, pos = [], offset + gap
    for n in sizes:
        views.append(buf[pos:pos + n])
        pos += n + gap
    return views


GUARDED = [1, 7, 8, 9, 31, 33, 1000, (1 << 16) + 1, (1 << 17) + 13]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scope,amount", [("global", 77), ("layer", 0.9)])
def test_views_with_guards(target, dtype, scope, amount, gen):
    """Weights and masks are views into shared buffers at odd offsets; the gaps hold NaN
    (weights: reading past a tensor is an error) and random bytes (masks: writing past a
    tensor shows). Nothing outside the views may change."""
    import lth_fast
    from tests.helpers.ops import bits
    from lth_fast import reference
    gap, total = 5, 3 + sum(GUARDED) + 5 * (len(GUARDED) + 1)
    wbuf = torch.full((total,), float("nan"), dtype=torch.float64)
    weights = carve(wbuf, GUARDED, gap, 1)
    for w in weights:
        w.copy_(torch.randn(w.shape, generator=gen, dtype=torch.float64))
    wbuf = wbuf.to(dtype).to(target)
    mbuf = (torch.rand(total, generator=gen) < 0.5).to(target)
    weights, masks = carve(wbuf, GUARDED, gap, 1), carve(mbuf, GUARDED, gap, 3)
    weights[6], masks[6] = weights[6].view(40, 25), masks[6].view(40, 25)
    assert all(w.is_contiguous() and m.is_contiguous() for w, m in zip(weights, masks))
    w0, m0 = bits(wbuf).clone(), mbuf.clone()
    ref = [m.cpu().clone() for m in masks]
    want = reference.prune_([w.cpu() for w in weights], ref, amount, scope=scope)
    assert lth_fast.prune_(weights, masks, amount, scope=scope) == want
    for i, (m, r) in enumerate(zip(masks, ref)):
        assert torch.equal(m.cpu(), r), f"masks[{i}]"
    assert torch.equal(bits(wbuf), w0), "weights buffer changed"
    expect = m0.clone()
    for v, r in zip(carve(expect, GUARDED, gap, 3), ref):
        v.copy_(r.reshape(-1))
    assert torch.equal(mbuf, expect), "a guard byte between the masks changed"


COLLECT_CAP = 1 << 14  # kCollectCap in csrc/cpu/select/counting.h: entries held for the cut


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_tie_crowding_the_cut(target, dtype, gen):
    """A tie of 60K equal magnitudes, spread over two tensors and many chunks among distinct
    smaller and larger ones, with dead entries: k cuts the tie after its first r entries by
    position, for r from 1 to past the number of entries the fast path collects."""
    n = 150_000
    w = 0.5 + torch.rand(n, generator=gen, dtype=torch.float64)  # [0.5, 1.5): below the tie
    w[torch.randperm(n, generator=gen)[:60_000]] = 1.5
    w[torch.rand(n, generator=gen) < 0.3] = 2.0 + torch.rand(1, generator=gen).item()
    w = (w * signs((n,), gen)).to(dtype)
    weights = [w[:70_001].clone(), w[70_001:].clone()]
    masks = random_masks(weights, gen, 0.9)
    below = sum(int((m & (x.double().abs() < 1.5)).sum()) for x, m in zip(weights, masks))
    tied = sum(int((m & (x.double().abs() == 1.5)).sum()) for x, m in zip(weights, masks))
    assert tied > 2 * COLLECT_CAP
    for r in (1, 5000, COLLECT_CAP, COLLECT_CAP + 1, tied):
        run_and_compare(weights, masks, below + r, "global", target)
