"""hypothesis: random small lists of tensors with values from a small set (ties everywhere),
random existing masks and amounts; the fast op must equal the reference bit for bit."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.prune import run_and_compare
from tests.helpers.targets import DTYPES, ISAS, isa_env, isa_unsupported, needs_cuda


INF = math.inf
# Zeros of both signs, ties, infinities, and 1e-40: a float32 subnormal that bfloat16 keeps as a
# subnormal and float16 rounds to zero (just another zero to tie with).
VALUES = [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.0, INF, -INF, 1e-40, -1e-40, 3.0]

PARAMS = [pytest.param(("cpu", isa), id=f"cpu-{isa}",
                       marks=pytest.mark.skipif(isa_unsupported(isa) is not None,
                                                reason=str(isa_unsupported(isa))))
          for isa in ISAS] + [pytest.param(("cuda", None), id="cuda", marks=needs_cuda)]


@st.composite
def shapes(draw):
    return tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))


@st.composite
def problems(draw, max_tensors=6):
    dtype = draw(st.sampled_from(DTYPES))
    weights, masks = [], []
    for shape in draw(st.lists(shapes(), min_size=0, max_size=max_tensors)):
        n = math.prod(shape)
        vals = draw(st.lists(st.sampled_from(VALUES), min_size=n, max_size=n))
        alive = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        weights.append(torch.tensor(vals, dtype=torch.float64).reshape(shape).to(dtype))
        masks.append(torch.tensor(alive, dtype=torch.bool).reshape(shape))
    scope = draw(st.sampled_from(["global", "layer"]))
    alive = [int(m.sum()) for m in masks]
    fraction = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 0.25, 0.75]),
                         st.floats(0.0, 1.0, allow_nan=False))
    if scope == "global":
        amount = draw(st.one_of(fraction, st.integers(0, sum(alive))))
    else:
        kind = draw(st.sampled_from(["fraction", "count", "fractions", "counts"]))
        if kind == "fraction":
            amount = draw(fraction)
        elif kind == "count":
            amount = draw(st.integers(0, min(alive) if alive else 0))
        elif kind == "fractions":
            amount = [draw(fraction) for _ in masks]
        else:
            amount = [draw(st.integers(0, n)) for n in alive]
    return weights, masks, amount, scope


@pytest.mark.parametrize("where", PARAMS)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems())
def test_fast_equals_reference_small(where, problem):
    device, isa = where
    weights, masks, amount, scope = problem
    with isa_env(isa):
        run_and_compare(weights, masks, amount, scope, device)


@pytest.mark.parametrize("where", PARAMS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=st.lists(st.sampled_from(VALUES), min_size=1, max_size=40),
       alive=st.lists(st.booleans(), min_size=1, max_size=40),
       n=st.integers((1 << 17) - 5, (1 << 17) + 20_000),
       dtype=st.sampled_from(DTYPES),
       amount=st.one_of(st.floats(0.0, 1.0), st.integers(0, 1000)))
def test_fast_equals_reference_tiled(where, pattern, alive, n, dtype, amount):
    """Short value and mask patterns tiled over ~2^17 entries: huge tie groups whose layout
    aliases with any regular sample, so the one-pass band (sampled from 4,096 entries) may
    miss; n straddles 2^17, where the counting engine that then takes over starts sampling
    (kRecountFrom, csrc/cpu/select/counting.cpp). The fast path's own boundaries are aimed at
    in test_prune_boundaries.py."""
    device, isa = where
    reps = n // len(pattern) + 1
    w = torch.tensor(pattern, dtype=torch.float64).repeat(reps)[:n].to(dtype)
    m = torch.tensor(alive).repeat(n // len(alive) + 1)[:n]
    if isinstance(amount, int):
        amount = min(amount, int(m.sum()))
    with isa_env(isa):
        run_and_compare([w, w[:1000].clone()], [m, m[:1000].clone()], amount, "global", device)
