"""rewind_ fast == reference (docs/semantics.md, "Rewind"), bit for bit: every CPU ISA (and CUDA where there is
one) and dtype, edge sizes, unaligned data pointers (every misalignment of the streaming-store
head), hundreds of tensors, special values, in-place use (params as their own snapshot), and bad
input. Destinations are poisoned with NaN first, so an element the kernel forgets to write
shows; guard elements after each view show writes past the end."""
from __future__ import annotations

import pytest
import torch

import lth_fast
from lth_fast import reference

from tests.helpers.ops import bits, offset_view, one_thread  # noqa: F401
from tests.helpers.targets import DTYPES

EDGE_SIZES = [0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000, 70001]
SPECIALS = [float("inf"), float("-inf"), float("nan"), -0.0, 0.0]


def random_like(shape, dtype, gen, specials=0.0):
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    if specials:
        s = torch.tensor(SPECIALS, dtype=dtype)
        pick = torch.randint(0, len(SPECIALS), shape, generator=gen)
        x = torch.where(torch.rand(shape, generator=gen) < specials, s[pick], x)
    return x


def expected(snapshot, mask):
    """snapshot where mask else +0.0, computed without either implementation."""
    return torch.where(mask, snapshot, torch.zeros((), dtype=snapshot.dtype))


def check_rewind(shapes, dtype, gen, dst_offsets=None, alive_p=0.6, specials=0.1, device="cpu"):
    snaps = [random_like(s, dtype, gen, specials) for s in shapes]
    masks = [torch.rand(s, generator=gen) < alive_p for s in shapes]
    bigs = []
    if dst_offsets is None:
        params = [torch.full(s, float("nan"), dtype=dtype) for s in shapes]
    else:
        params = []
        for i, s in enumerate(shapes):
            view, big = offset_view(s, dtype, dst_offsets[i % len(dst_offsets)], float("nan"))
            params.append(view)
            bigs.append((big, big.clone(), dst_offsets[i % len(dst_offsets)], view.numel()))
    ref = [torch.full(s, float("nan"), dtype=dtype) for s in shapes]
    snap0 = [bits(s).clone() for s in snaps]
    if device == "cpu":
        lth_fast.rewind_(params, snaps, masks)
    else:
        on_dev = [p.to(device) for p in params]
        lth_fast.rewind_(on_dev, [s.to(device) for s in snaps], [m.to(device) for m in masks])
        params = [p.cpu() for p in on_dev]
    reference.rewind_(ref, snaps, masks)
    for i, (p, r, s, m) in enumerate(zip(params, ref, snaps, masks)):
        want = bits(expected(s, m))
        assert torch.equal(bits(r), want), f"reference: params[{i}] wrong"
        if not torch.equal(bits(p), want):
            bad = torch.nonzero((bits(p) != want).reshape(-1)).flatten()[:8].tolist()
            pytest.fail(f"params[{i}] ({dtype}, {p.numel()} elements) differs from "
                        f"snapshot*mask at flat positions {bad}")
        assert torch.equal(bits(s), snap0[i]), f"snapshot[{i}] was modified"
    for big, before, off, n in bigs:  # nothing written outside the views
        assert torch.equal(bits(big[:off]), bits(before[:off])), "written before the view"
        assert torch.equal(bits(big[off + n:]), bits(before[off + n:])), "written past the view"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_edge_sizes_match_reference(target, dtype, gen):
    check_rewind([(n,) for n in EDGE_SIZES] + [(3, 0, 2), (4, 5, 6)], dtype, gen, device=target)


@pytest.mark.parametrize("alive_p", [0.0, 1.0, 0.5], ids=["all-pruned", "all-alive", "half"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mask_extremes(target, dtype, alive_p, gen):
    check_rewind([(70001,), (100,)], dtype, gen, alive_p=alive_p, device=target)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_unaligned_destinations(isa, dtype, gen):
    """Every start offset modulo a 64-byte line, for sizes around the vector width."""
    per_line = 64 // torch.empty((), dtype=dtype).element_size()
    shapes = [(n,) for n in (1, 5, per_line - 1, per_line, per_line + 3, 3 * per_line + 5, 4097)]
    for off in range(1, per_line + 1):
        check_rewind(shapes, dtype, gen, dst_offsets=[off])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_unaligned_sources_and_masks(isa, dtype, gen):
    """Snapshot and mask views at offsets too (the op may only assume element alignment)."""
    shapes = [(n,) for n in (3, 17, 129, 70001)]
    params = [torch.full(s, float("nan"), dtype=dtype) for s in shapes]
    snaps = [offset_view(s, dtype, 2 * i + 1, 7.0)[0].copy_(random_like(s, dtype, gen))
             for i, s in enumerate(shapes)]
    masks = [offset_view(s, torch.bool, i + 3, True)[0].copy_(torch.rand(s, generator=gen) < 0.5)
             for i, s in enumerate(shapes)]
    lth_fast.rewind_(params, snaps, masks)
    for i, (p, s, m) in enumerate(zip(params, snaps, masks)):
        assert torch.equal(bits(p), bits(expected(s, m))), f"params[{i}]"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_hundreds_of_tensors(isa, dtype, gen):
    sizes = torch.randint(0, 100, (300,), generator=gen).tolist()
    check_rewind([(n,) for n in sizes], dtype, gen,
                 dst_offsets=list(range(1, 64 // torch.empty((), dtype=dtype).element_size())))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_lists_past_the_streaming_threshold(isa, dtype, gen):
    """Above 32 MiB the kernels switch to non-temporal stores: both paths, misaligned too."""
    per = (33 << 20) // torch.empty((), dtype=dtype).element_size() // 2
    check_rewind([(per + 5,), (per + 3,), (17,)], dtype, gen, dst_offsets=[1, 0, 3],
                 specials=0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_in_place_is_apply(isa, dtype, gen):
    """rewind_(w, w, masks) zeroes the pruned weights and keeps the others bit for bit."""
    ws = [random_like((n,), dtype, gen, specials=0.2) for n in (70001, 33, 1)]
    masks = [torch.rand(w.shape, generator=gen) < 0.5 for w in ws]
    want = [bits(expected(w, m)).clone() for w, m in zip(ws, masks)]
    lth_fast.rewind_(ws, ws, masks)
    for i, (w, x) in enumerate(zip(ws, want)):
        assert torch.equal(bits(w), x), f"params[{i}]"


def test_threads_agree(gen):
    snaps = [random_like((70001,), torch.float32, gen), random_like((130001,), torch.float32, gen)]
    masks = [torch.rand(s.shape, generator=gen) < 0.5 for s in snaps]
    outs = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        params = [torch.full_like(s, float("nan")) for s in snaps]
        lth_fast.rewind_(params, snaps, masks)
        outs.append(torch.cat(params))
    assert torch.equal(bits(outs[0]), bits(outs[1]))


def _bad_cases():
    def setitem(lst, i, v):
        lst[i] = v
    return [
        ("snapshot-length", lambda p, s, m: s.pop(), ValueError, "snapshot"),
        ("masks-length", lambda p, s, m: m.pop(), ValueError, "masks"),
        ("snapshot-shape", lambda p, s, m: setitem(s, 1, s[1][:-1]), ValueError, "snapshot[1]"),
        ("snapshot-dtype", lambda p, s, m: setitem(s, 2, s[2].double()), TypeError, "snapshot[2]"),
        ("mask-dtype", lambda p, s, m: setitem(m, 0, m[0].to(torch.uint8)), TypeError, "masks[0]"),
        ("mask-shape", lambda p, s, m: setitem(m, 1, m[1].reshape(1, -1)), ValueError, "masks[1]"),
        ("param-dtype", lambda p, s, m: setitem(p, 2, p[2].half()), TypeError, "params[2]"),
        ("param-int", lambda p, s, m: setitem(p, 0, p[0].int()), TypeError, "params[0]"),
        ("param-strided", lambda p, s, m: setitem(p, 1, torch.zeros(p[1].numel() * 2)[::2]),
         ValueError, "params[1]"),
        ("snapshot-strided", lambda p, s, m: setitem(s, 0, torch.zeros(s[0].numel() * 3)[::3]),
         ValueError, "snapshot[0]"),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize("impl", [lth_fast.rewind_, reference.rewind_], ids=["fast", "reference"])
def test_bad_input_raises_and_mutates_nothing(impl, case, gen):
    _, mutate, error, text = case
    params = [torch.randn(n, generator=gen) for n in (1000, 9, 4)]
    snaps = [torch.randn(n, generator=gen) for n in (1000, 9, 4)]
    masks = [torch.rand(n, generator=gen) < 0.5 for n in (1000, 9, 4)]
    mutate(params, snaps, masks)
    before = [bits(p).clone() for p in params]
    with pytest.raises(error) as err:
        impl(params, snaps, masks)
    assert text in str(err.value), f"{err.value!r} does not mention {text!r}"
    for i, (p, b) in enumerate(zip(params, before)):
        assert torch.equal(bits(p), b), f"params[{i}] was modified by a failing call"


def test_empty_lists():
    lth_fast.rewind_([], [], [])
    for impl in (lth_fast.rewind_, reference.rewind_):
        with pytest.raises(ValueError, match="snapshot"):
            impl([], [torch.zeros(2)], [])
