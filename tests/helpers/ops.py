"""Helpers of the op, optimizer and pruner tests: distance in units in the last place (ulp) of
the tensor's own dtype, bitwise equality that tells -0.0 from +0.0 and compares NaNs, random
existing masks, unaligned views, and a one-thread fixture.

Why one thread: results do not depend on the thread count (every chunk of work is independent;
tests/ops/test_*_op.py check it explicitly), but on the shared 2-core machine, with other jobs
running, each OpenMP parallel region can cost milliseconds of barrier spinning, which made
these small tests 15x slower. Import `one_thread` into a test module to use it there."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# (significand bits including the implicit one, smallest normal exponent) of each dtype
_FORMAT = {torch.float32: (24, -126), torch.float16: (11, -14), torch.bfloat16: (8, -126),
           torch.float64: (53, -1022)}


def ulp(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The spacing of `dtype` around each value of x (float64), subnormals included."""
    digits, emin = _FORMAT[dtype]
    _, e = torch.frexp(x)  # x = m * 2^e with 0.5 <= |m| < 1: the leading bit is 2^(e-1)
    e = torch.where(x == 0, emin, torch.clamp(e.long() - 1, min=emin))
    return torch.ldexp(torch.ones_like(x), e - (digits - 1))


def assert_within_ulps(actual: torch.Tensor, expected: torch.Tensor, what: str, ulps: int = 1,
                       scale: torch.Tensor = None):
    """Same NaN and infinity positions; finite values within `ulps` ulp of each other (ulps of
    the larger of the two and, when given, of |scale| at the same position: for results of a
    sum whose terms were larger than the result)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    a, e = actual.double().reshape(-1), expected.double().reshape(-1)
    nan_a, nan_e = torch.isnan(a), torch.isnan(e)
    if not torch.equal(nan_a, nan_e):
        bad = torch.nonzero(nan_a != nan_e).flatten()[:5].tolist()
        raise AssertionError(f"{what}: NaN positions differ at {bad}")
    inf = torch.isinf(a) | torch.isinf(e)
    if not torch.equal(a[inf], e[inf]):
        raise AssertionError(f"{what}: infinities differ")
    fin = ~(nan_a | inf)
    a, e = a[fin], e[fin]
    tol = ulps * torch.maximum(ulp(a, actual.dtype), ulp(e, actual.dtype))
    if scale is not None:
        s = scale.double().reshape(-1)[fin].abs().nan_to_num(posinf=0.0)
        tol = torch.maximum(tol, ulps * ulp(s, actual.dtype))
    over = (a - e).abs() > tol
    if over.any():
        i = torch.nonzero(over).flatten()[:5]
        raise AssertionError(f"{what}: {int(over.sum())} values more than {ulps} ulp apart, "
                             f"e.g. got {a[i].tolist()} want {e[i].tolist()}")


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits, so that equality is bitwise (-0.0 != +0.0, NaN payloads compared)."""
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    return t.view(ints[t.element_size()])


def random_masks(tensors, gen, alive_p=0.8):
    """Existing masks of `tensors`, each entry alive with probability `alive_p` (some already
    dead: nothing may rely on a fresh mask)."""
    return [torch.rand(t.shape, generator=gen) < alive_p for t in tensors]


def offset_view(shape, dtype, offset: int, fill: float, pad: int = 64):
    """A contiguous tensor of `shape` whose data starts `offset` elements into a larger buffer
    (an unaligned data pointer), plus the buffer, with `pad` guard elements after it; every
    element of the buffer starts as `fill`."""
    n = 1
    for d in shape:
        n *= d
    big = torch.full((offset + n + pad,), fill, dtype=dtype)
    return big[offset:offset + n].view(shape), big


def update_inputs(shapes, dtype, gen, states, alive_p=0.7, offsets=None):
    """Inputs of a masked update op: params, grads, masks, then one list per entry of `states`,
    a (scale, square) pair: randn * scale, squared when square (for second moments, >= 0).
    With offsets, every tensor starts at an unaligned address inside a NaN-filled buffer and
    the masks at odd byte addresses."""
    def tensor(shape, scale, i, k, square=False):
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
        x = (x * x if square else x).to(dtype)
        if offsets is None:
            return x
        view, _ = offset_view(shape, dtype, offsets[(i + k) % len(offsets)], float("nan"))
        return view.copy_(x)
    params = [tensor(s, 1.0, i, 0) for i, s in enumerate(shapes)]
    grads = [tensor(s, 0.5, i, 1) for i, s in enumerate(shapes)]
    extra = [[tensor(s, scale, i, 2 + j, square) for i, s in enumerate(shapes)]
             for j, (scale, square) in enumerate(states)]
    masks = [torch.rand(s, generator=gen) < alive_p for s in shapes]
    if offsets is not None:
        masks = [offset_view(m.shape, torch.bool, offsets[i % len(offsets)] + 2, True)[0]
                 .copy_(m) for i, m in enumerate(masks)]
    return (params, grads, masks, *extra)


def flat(tensors, dtype):
    """One 1-D tensor of all of `tensors` (empty of `dtype` when there are none)."""
    return torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.empty(0, dtype=dtype)
