"""prune_ on CPU at the fast path's own size boundaries, against lth_fast.reference bit for bit
(masks and stats) on every CPU instruction set.

The boundaries come from the one-pass engine, csrc/cpu/select/one_pass.h:
- kSampleFrom = 4,096: a ranking of fewer entries is not sampled (its band is the whole key
  range, so its cut bucket can always be collected); from 4,096 on its band comes from a
  sample of blocks of kSampleBlock = 16 neighbours (csrc/cpu/select/counting.h);
- sample_blocks (one_pass.cpp) takes n / kEntriesPerBlock blocks clamped to
  [kMinBlocks, kMaxBlocks] = [64, 1024] with kEntriesPerBlock = 8,192: the clamps meet the
  quotient at 64 * 8,192 = 512Ki and 1,024 * 8,192 = 8Mi entries.
Each is hit at n - 1, n and n + 1 entries per ranking: in scope "global" as a list of tensors
(an empty one among them) whose total is n, in scope "layer" as one tensor of n entries beside
a small unsampled one. The 2^17 entries other tests mention is where the counting engine, the
fallback after a band miss, starts sampling (kRecountFrom in counting.cpp), not the fast path.
"""
from __future__ import annotations

import functools

import pytest
import torch

from tests.helpers.prune import run_and_compare
from tests.helpers.targets import DTYPES

SAMPLE_FROM = 4096             # kSampleFrom
MIN_BLOCKS_UP_TO = 64 * 8192   # kMinBlocks * kEntriesPerBlock = 512Ki
MAX_BLOCKS_FROM = 1024 * 8192  # kMaxBlocks * kEntriesPerBlock = 8Mi


def around(boundary):
    return [pytest.param(boundary + d, id=f"{boundary}{d:+d}") for d in (-1, 0, 1)]


@functools.lru_cache(maxsize=4)
def _draw(dtype, size, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(size, generator=g, dtype=torch.float64)
    w *= 2.0 ** torch.randint(-4, 5, (size,), generator=g).double()
    return w.to(dtype), torch.rand(size, generator=g) < 0.8


def base(dtype, n, seed):
    """Normal weights of both signs at a few scales (the half types round into ties) and masks
    80% alive, at least n + 100 entries: the three sizes around a boundary (one below a
    multiple of 8,192 to one above it) draw the same entries, of which each case uses n."""
    return _draw(dtype, ((n + 1) // 8192 + 1) * 8192 + 100, seed)


def global_case(dtype, n):
    """Tensors of total n: n // 3, 0, 1 and the rest entries."""
    w, m = base(dtype, n, 1)
    sizes = [n // 3, 0, 1, n - n // 3 - 1]
    return [t.clone() for t in w[:n].split(sizes)], [t.clone() for t in m[:n].split(sizes)]


def layer_case(dtype, n):
    """One tensor of n entries (one ranking), then one of 100."""
    w, m = base(dtype, n, 2)
    return [w[:n].clone(), w[-100:].clone()], [m[:n].clone(), m[-100:].clone()]


def check(dtype, n, scope):
    if scope == "global":
        weights, masks = global_case(dtype, n)
        alive = sum(int(t.sum()) for t in masks)
        amounts = [0.37, alive * 3 // 5]
    else:
        weights, masks = layer_case(dtype, n)
        alive = int(masks[0].sum())
        amounts = [[0.37, 0.5], [alive // 3, 7]]
    for amount in amounts:
        run_and_compare(weights, masks, amount, scope)


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", around(SAMPLE_FROM))
def test_sampling_starts_at_4096_entries(isa, n, dtype, scope):
    check(dtype, n, scope)


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", around(MIN_BLOCKS_UP_TO))
def test_fewest_sample_blocks_up_to_512Ki_entries(isa, n, dtype, scope):
    check(dtype, n, scope)


# 8Mi entries a case (seconds of the reference each): float32 (32-bit keys) across tensors,
# float64 (64-bit keys) as one ranking of the layer scope.
LARGE = [(torch.float32, "global"), (torch.float64, "layer")]


@pytest.mark.parametrize("dtype,scope", LARGE, ids=[f"{str(d)[6:]}-{s}" for d, s in LARGE])
@pytest.mark.parametrize("n", around(MAX_BLOCKS_FROM))
def test_most_sample_blocks_from_8Mi_entries(isa, n, dtype, scope):
    check(dtype, n, scope)
