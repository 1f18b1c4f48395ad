"""prune_ fast == reference on fresh random data: every device, ISA, dtype, scope and amount kind,
including multi-million-entry sampled bands, samples that miss (the counting engine takes
over), and the tie fallback (> 16K tied entries). The fast path's size boundaries (4,096
entries, the 512Ki/8Mi block clamps) are aimed at in test_prune_boundaries.py."""
from __future__ import annotations

import pytest
import torch

from tests.helpers.ops import random_masks
from tests.helpers.prune import run_and_compare
from tests.helpers.targets import DTYPES


SCOPES = ["global", "layer"]
AMOUNT_KINDS = ["fraction", "count", "per_tensor_fraction", "per_tensor_count",
                "one_in_list"]
SAMPLED = 3_000_000  # a sampled band (from 4,096 entries) of ~367 blocks, between the clamps


def random_shapes(gen, n_max=6, numel_max=5000):
    shapes = []
    for _ in range(int(torch.randint(1, n_max + 1, (1,), generator=gen))):
        ndim = int(torch.randint(1, 4, (1,), generator=gen))
        dims = torch.randint(1, int(numel_max ** (1 / ndim)) + 1, (ndim,), generator=gen)
        shapes.append(tuple(dims.tolist()))
    return shapes


def random_weights(shapes, dtype, gen):
    """Normal values at per-tensor scales 2^-8..2^8, both signs; half types round into ties."""
    out = []
    for s in shapes:
        scale = 2.0 ** int(torch.randint(-8, 9, (1,), generator=gen))
        out.append((torch.randn(s, generator=gen, dtype=torch.float64) * scale).to(dtype))
    return out


def random_amount(kind, masks, scope, gen):
    """An amount of `kind` valid for these masks (counts never exceed what is alive)."""
    alive = [int(m.sum()) for m in masks]

    def frac():
        return float(torch.rand((), generator=gen, dtype=torch.float64))

    def count(n):
        return int(torch.randint(0, n + 1, (1,), generator=gen))

    if kind == "fraction":
        return frac()
    if kind == "count":
        return count(min(alive) if scope == "layer" else sum(alive))
    if kind == "one_in_list":
        return [frac()]
    if kind == "per_tensor_fraction":
        return [frac() for _ in masks]
    return [count(n) for n in alive]


def kinds_for(scope):
    return AMOUNT_KINDS if scope == "layer" else ["fraction", "count"]


CASES = [(s, k) for s in SCOPES for k in kinds_for(s)]


@pytest.mark.parametrize("scope,kind", CASES, ids=[f"{s}-{k}" for s, k in CASES])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_random_matches_reference(target, dtype, scope, kind, gen):
    for _ in range(3):  # several fresh draws per parameter set
        shapes = random_shapes(gen)
        weights = random_weights(shapes, dtype, gen)
        masks = random_masks(weights, gen, alive_p=float(torch.rand((), generator=gen)) * 0.9 + 0.1)
        amount = random_amount(kind, masks, scope, gen)
        run_and_compare(weights, masks, amount, scope, target)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_repeated_pruning_levels(target, dtype, gen):
    """IMP-style: prune 20% of what is alive, five times over the same masks."""
    weights = random_weights([(64, 33), (1000,), (7, 7, 7)], dtype, gen)
    masks = random_masks(weights, gen, alive_p=0.95)
    for _ in range(5):
        masks, _ = run_and_compare(weights, masks, 0.2, "global", target)


@pytest.mark.parametrize("amount", [0.0, 0.25, 0.5, 0.999, 1.0])
def test_fraction_rounding_matches_python_round(target, amount):
    """k = round(amount * alive) with Python's round (half to even): alive = 10, 0.25 -> 2."""
    weights = [torch.arange(1, 11, dtype=torch.float32)]
    masks = [torch.ones(10, dtype=torch.bool)]
    got, stats = run_and_compare(weights, masks, amount, "global", target)
    k = round(amount * 10)
    assert stats.pruned == k
    assert torch.equal(got[0], torch.arange(10) >= k)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scope", SCOPES)
def test_per_tensor_amounts(target, dtype, scope, gen):
    """One amount per tensor (e.g. output layer at half rate) ranks each tensor alone."""
    weights = random_weights([(300, 20), (500,), (10, 10), (1,)], dtype, gen)
    masks = random_masks(weights, gen)
    if scope == "layer":
        run_and_compare(weights, masks, [0.2, 0.2, 0.1, 1.0], scope, target)
        alive = [int(m.sum()) for m in masks]
        run_and_compare(weights, masks, [n // 3 for n in alive], scope, target)
    # layerwise with one amount == each tensor pruned alone with that amount
    got, _ = run_and_compare(weights, masks, 0.3, "layer", target)
    for i, (w, m) in enumerate(zip(weights, masks)):
        alone, _ = run_and_compare([w], [m], 0.3, "global", target)
        assert torch.equal(got[i], alone[0]), f"layerwise tensor {i} != pruned alone"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scope,amount", [("global", 0.37), ("layer", [0.6, 0.01]),
                                          ("global", 123_457)])
def test_sampled_band_path(target, dtype, scope, amount, gen):
    """Multi-million elements: a sampled threshold band, then exact selection inside it."""
    weights = random_weights([(SAMPLED,), (1000, 13)], dtype, gen)
    masks = random_masks(weights, gen, alive_p=0.9)
    run_and_compare(weights, masks, amount, scope, target)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("pattern", ["sample_sees_large", "sample_sees_small", "sample_dead"])
def test_sampled_band_misses(target, dtype, pattern, gen):
    """Data periodic with the stride of a regular sample (period 160, 16 entries a period) so a
    strided sample sees unrepresentative values or no alive entry: the band must be widened.
    The one-pass engine's 64 blocks lie 16 periods apart; after its miss, the counting engine
    (csrc/cpu/select/counting.cpp) samples too, as n is above its kRecountFrom = 2^17, with
    1,024 blocks one period apart: both samples alias."""
    n = 1024 * 160
    pos = torch.arange(n)
    hit = (pos % 160) < 16
    w = torch.rand(n, generator=gen, dtype=torch.float64) + 1.0
    if pattern == "sample_sees_large":
        w = torch.where(hit, w * 1000.0, w)
    elif pattern == "sample_sees_small":
        w = torch.where(hit, w * 1e-3, w)
    w = w.to(dtype)
    m = torch.rand(n, generator=gen) < 0.9
    if pattern == "sample_dead":
        m &= ~hit
    for amount in (0.5, 1000, int(hit.sum()) + 7):
        run_and_compare([w], [m], amount, "global", target)


def tie_case(dtype, gen, split):
    """2M entries: `low` distinct small ones, then 30000 alive entries of |w| = 0.5 (both signs)
    at random positions, the rest in [1, 2). Returns weights, masks and the tie positions."""
    n, low, ties = 2_000_000, 1000, 30_000
    w = (torch.rand(n, generator=gen, dtype=torch.float64) + 1.0)
    perm = torch.randperm(n, generator=gen)
    low_pos, tie_pos = perm[:low], perm[low:low + ties].sort().values
    w[low_pos] = torch.linspace(0.001, 0.25, low, dtype=torch.float64)
    w[tie_pos] = 0.5
    w = w * torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    w = w.to(dtype)
    m = torch.rand(n, generator=gen) < 0.95
    m[low_pos] = True
    m[tie_pos] = True
    if split:  # the tied block crosses tensor boundaries
        cut = [n // 3, n // 3 + 5, n - 2 * (n // 3) - 5]
        return list(w.split(cut)), list(m.split(cut)), tie_pos, low
    return [w], [m], tie_pos, low


TIE_CASES = [(torch.float32, False, (1, 15_000, 30_000)), (torch.float32, True, (17_000,)),
             (torch.float16, False, (15_000,)), (torch.float16, True, (1, 30_000)),
             (torch.bfloat16, False, (29_999,)), (torch.bfloat16, True, (15_000,)),
             (torch.float64, False, (1,)), (torch.float64, True, (15_000,))]


@pytest.mark.parametrize("dtype,split,rs", TIE_CASES,
                         ids=[f"{str(d)[6:]}-{'split' if s else 'one'}" for d, s, _ in TIE_CASES])
def test_large_tie_crosses_cut(target, dtype, split, rs, gen):
    """> 16K entries of exactly one magnitude straddle the cut: the earliest r of them die."""
    weights, masks, tie_pos, low = tie_case(dtype, gen, split)
    weights = [w.clone() for w in weights]
    masks = [m.clone() for m in masks]
    small = torch.cat(masks) & (torch.cat(weights).double().abs() < 0.5)
    assert int(small.sum()) == low
    for r in rs:
        got, stats = run_and_compare(weights, masks, low + r, "global", target)
        expect = torch.cat(masks) & ~small
        expect[tie_pos[:r]] = False
        assert torch.equal(torch.cat(got), expect), f"r={r}"
        assert stats.threshold == 0.5


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["all-equal", "one-dead-run", "split"])
def test_every_alive_entry_tied(target, dtype, case, gen):
    """Every alive magnitude equal (both signs): the sample's band is that one key, its one
    bucket far too crowded to collect, and the cut falls by position alone."""
    n = 3_000_000 + 17
    w = torch.full((n,), 0.75, dtype=torch.float64)
    w = (w * torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()).to(dtype)
    m = torch.rand(n, generator=gen) < 0.9
    if case == "one-dead-run":
        m[100_000:1_700_000] = False  # whole chunks without an alive entry
    weights, masks = [w], [m]
    if case == "split":
        cut = [1_000_003, 7, n - 1_000_010]
        weights, masks = list(w.split(cut)), list(m.split(cut))
    alive = int(m.sum())
    for amount in (1, 0.2, alive // 2 + 3, alive - 1, alive):
        got, stats = run_and_compare(weights, masks, amount, "global", target)
        k = amount if isinstance(amount, int) else round(amount * alive)
        expect = m.clone()
        expect[m.nonzero().flatten()[:k]] = False  # the first k alive entries by position
        assert torch.equal(torch.cat(got), expect), f"amount={amount}"
        assert stats.threshold == 0.75


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_large_tie_layerwise(target, dtype, gen):
    weights, masks, _, low = tie_case(dtype, gen, split=True)
    weights = [w.clone() for w in weights]
    masks = [m.clone() for m in masks]
    run_and_compare(weights, masks, [int(m.sum()) // 2 for m in masks], "layer", target)
