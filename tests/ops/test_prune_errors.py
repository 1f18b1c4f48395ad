"""Bad input to prune_: fast and reference raise the same exception type, the message names the
list and the index, and nothing is mutated (validate first, then write)."""
from __future__ import annotations

import math

import pytest
import torch

import lth_fast
from lth_fast import reference

from tests.helpers.ops import bits
from tests.helpers.targets import DTYPES, needs_cuda


def make(gen, sizes=(37, 100, 1000, 17, 3), dtype=torch.float32, alive_p=0.8):
    weights = [torch.randn(n, generator=gen).to(dtype) for n in sizes]
    masks = [torch.rand(n, generator=gen) < alive_p for n in sizes]
    return weights, masks


def same_layout_copy(t):
    """A copy with t's strides (clone() would make a strided slice contiguous)."""
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device).copy_(t)


def raises_same(weights, masks, amount, scope, exc, *names):
    """Both implementations raise `exc` naming every one of `names`, leaving all unchanged."""
    errors = []
    for impl in (lth_fast.prune_, reference.prune_):
        w_before = [bits(w).clone() if isinstance(w, torch.Tensor) and w.is_floating_point()
                    else w for w in weights]
        mine = [same_layout_copy(m) if isinstance(m, torch.Tensor) else m for m in masks]
        with pytest.raises(Exception) as info:
            impl(weights, mine, amount, scope=scope)
        err = info.value
        where = f"{impl.__module__}.prune_ raised {type(err).__name__}: {err}"
        assert isinstance(err, exc), f"want {exc.__name__}; {where}"
        for name in names:
            assert name in str(err), f"message should name {name!r}; {where}"
        for i, (m, m0) in enumerate(zip(mine, masks)):
            if isinstance(m, torch.Tensor):
                assert torch.equal(m, m0), f"masks[{i}] modified before raising; {where}"
        for i, (w, w0) in enumerate(zip(weights, w_before)):
            if isinstance(w0, torch.Tensor) and w.is_floating_point():
                assert torch.equal(bits(w), w0), f"weights[{i}] modified; {where}"
        errors.append(type(err))
    assert errors[0] is errors[1], f"fast raised {errors[0]}, reference {errors[1]}"


# --- NaN: found by the SIMD counting pass, so every ISA and device, alive or dead entries ---

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("index", [0, 2, 4])
@pytest.mark.parametrize("how", ["alive", "dead", "negative", "vector_tail", "payload"])
@pytest.mark.parametrize("scope,amount", [("global", 0.5), ("global", 0), ("layer", 0.5),
                                          ("layer", [1, 1, 1, 1, 1])])
def test_nan_rejected(target, dtype, index, how, scope, amount, gen):
    weights, masks = make(gen, dtype=dtype)
    w, n = weights[index], weights[index].numel()
    pos = n - 1 if how == "vector_tail" else n // 2
    w[pos] = float("nan")
    if how == "negative":
        w[pos] = -w[pos]
    if how == "payload":  # a NaN with other mantissa bits: still NaN
        b = bits(w)
        b[pos] = b[pos] | 1
        assert math.isnan(float(w[pos]))
    masks[index][pos] = how != "dead"
    weights = [x.to(target) for x in weights]
    masks = [x.to(target) for x in masks]
    raises_same(weights, masks, amount, scope, ValueError, f"weights[{index}]")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("pos", [0, (1 << 18) + 4, (1 << 18) + 6], ids=["head", "mid", "last"])
def test_nan_in_sampled_path(target, dtype, pos, gen):
    """From 4,096 entries a ranking's band comes from a sample (kSampleFrom,
    csrc/cpu/select/one_pass.h), which need not see the NaN; the marking pass must find it."""
    weights, masks = make(gen, sizes=(100, (1 << 18) + 7, 9), dtype=dtype)
    weights[1][pos] = float("nan")
    masks[1][pos] = False
    weights = [x.to(target) for x in weights]
    masks = [x.to(target) for x in masks]
    for scope, amount in [("global", 0.3), ("layer", 0.3), ("global", 5)]:
        raises_same(weights, masks, amount, scope, ValueError, "weights[1]")


def test_layer_error_on_tensor_3_leaves_earlier_tensors(target, gen):
    weights, masks = make(gen, sizes=(50, 60, 70, 20, 30), alive_p=1.0)
    weights = [x.to(target) for x in weights]
    masks = [x.to(target) for x in masks]
    raises_same(weights, masks, [1, 2, 3, 21, 4], "layer", ValueError, "weights[3]", "amount[3]")
    raises_same(weights, masks, 21, "layer", ValueError, "weights[3]")
    weights[3][7] = float("nan")
    raises_same(weights, masks, [1, 2, 3, 4, 5], "layer", ValueError, "weights[3]")


# --- types, shapes, layout, lengths ---

@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.float32, torch.int64])
def test_wrong_mask_dtype(dtype, gen):
    weights, masks = make(gen)
    masks[1] = masks[1].to(dtype)
    raises_same(weights, masks, 0.5, "global", TypeError, "masks[1]")


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.complex64,
                                   torch.uint8])
@pytest.mark.parametrize("index", [0, 2])
def test_wrong_weight_dtype(dtype, index, gen):
    weights, masks = make(gen)
    weights[index] = (weights[index] * 10).to(dtype)
    raises_same(weights, masks, 0.5, "global", TypeError, f"weights[{index}]")


@pytest.mark.parametrize("other", [torch.float16, torch.float64, torch.bfloat16])
def test_mixed_weight_dtypes(other, gen):
    weights, masks = make(gen)
    weights[3] = weights[3].to(other)
    raises_same(weights, masks, 0.5, "global", TypeError, "weights[3]")
    raises_same(weights, masks, 0.5, "layer", TypeError, "weights[3]")


def test_shape_mismatch(gen):
    weights, masks = make(gen)
    masks[1] = torch.ones(101, dtype=torch.bool)
    raises_same(weights, masks, 0.5, "global", ValueError, "masks[1]")
    masks[1] = torch.ones(10, 10, dtype=torch.bool)  # same numel, other shape
    raises_same(weights, masks, 0.5, "global", ValueError, "masks[1]")


@pytest.mark.parametrize("which", ["weights", "masks"])
@pytest.mark.parametrize("how", ["transposed", "strided"])
def test_non_contiguous(which, how, gen):
    weights, masks = make(gen, sizes=(12, 30, 8))
    weights[1], masks[1] = weights[1].view(5, 6), masks[1].view(5, 6)
    if how == "transposed":
        bad_w, bad_m = weights[1].t().contiguous().t(), masks[1].t().contiguous().t()
    else:
        bad_w = torch.randn(10, 6, generator=gen)[::2]
        bad_m = torch.ones(10, 6, dtype=torch.bool)[::2]
    assert not bad_w.is_contiguous() and not bad_m.is_contiguous()
    if which == "weights":
        weights[1] = bad_w
    else:
        masks[1] = bad_m
    raises_same(weights, masks, 0.5, "global", ValueError, f"{which}[1]")


@pytest.mark.parametrize("n_masks", [0, 4, 6])
def test_list_lengths_differ(n_masks, gen):
    weights, masks = make(gen)
    masks = (masks + [torch.ones(3, dtype=torch.bool)])[:n_masks]
    raises_same(weights, masks, 0.5, "global", ValueError, "masks", "weights")


def test_masks_without_weights():
    raises_same([], [torch.ones(3, dtype=torch.bool)], 0.5, "global", ValueError, "masks")


@pytest.mark.parametrize("which", ["weights", "masks"])
@pytest.mark.parametrize("bad", [None, [1.0, 2.0]], ids=["None", "list"])
def test_non_tensor_element(which, bad, gen):
    """docs/semantics.md, "Errors and aliasing": bad input raises TypeError/ValueError naming the list and the index."""
    weights, masks = make(gen, sizes=(3, 4, 5))
    (weights if which == "weights" else masks)[1] = bad
    raises_same(weights, masks, 0.5, "global", TypeError, f"{which}[1]")


# --- amounts and scope ---

@pytest.mark.parametrize("amount", [-0.1, 1.5, math.nan, math.inf, -math.inf, 1.0000001, -1, -5])
def test_amount_out_of_range(amount, gen):
    weights, masks = make(gen)
    raises_same(weights, masks, amount, "global", ValueError, "amount[0]")
    raises_same(weights, masks, amount, "layer", ValueError, "amount[0]")
    raises_same(weights, masks, [0.1, 0.2, amount, 0.3, 0.4] if isinstance(amount, float)
                else [1, 2, amount, 3, 4], "layer", ValueError, "amount[2]")


@pytest.mark.parametrize("extra", [1, 1000])
def test_count_above_alive_global(target, extra, gen):
    weights, masks = make(gen)
    alive = sum(int(m.sum()) for m in masks)
    weights = [x.to(target) for x in weights]
    masks = [x.to(target) for x in masks]
    raises_same(weights, masks, alive + extra, "global", ValueError, "amount[0]", str(alive))
    dead = [torch.zeros_like(m) for m in masks]
    raises_same(weights, dead, 1, "global", ValueError, "amount[0]")


@pytest.mark.parametrize("amount", [2 ** 63, 10 ** 30])
def test_huge_count(amount, gen):
    """An int beyond int64 is still just a count larger than what is alive."""
    weights, masks = make(gen)
    raises_same(weights, masks, amount, "global", ValueError, "amount[0]")


@pytest.mark.parametrize("amount", [True, False, [0.1, True, 0.1, 0.1, 0.1], "0.5", None,
                                    torch.tensor(0.5)], ids=lambda a: type(a).__name__)
def test_amount_wrong_type(amount, gen):
    weights, masks = make(gen)
    scope = "layer" if isinstance(amount, list) else "global"
    raises_same(weights, masks, amount, scope, TypeError, "amount[")


def test_amounts_mix_ints_and_floats(gen):
    weights, masks = make(gen)
    raises_same(weights, masks, [1, 0.5, 1, 1, 1], "layer", TypeError, "amount")


@pytest.mark.parametrize("scope", ["local", "Global", "", None, "layers"])
def test_bad_scope(scope, gen):
    weights, masks = make(gen)
    raises_same(weights, masks, 0.5, scope, ValueError, "scope")


@pytest.mark.parametrize("amount", [[0.5], [0.1] * 5, (1, 2, 3, 4, 5), []])
def test_list_amount_with_global_scope(amount, gen):
    weights, masks = make(gen)
    raises_same(weights, masks, amount, "global", ValueError, "scope='layer'")


@pytest.mark.parametrize("amount", [[0.5, 0.5], [1] * 6, []])
def test_layer_amounts_wrong_length(amount, gen):
    weights, masks = make(gen)
    raises_same(weights, masks, amount, "layer", ValueError, "5 tensors")


# --- devices ---

@needs_cuda
@pytest.mark.parametrize("which", ["weights", "masks"])
def test_mixed_devices(which, gen):
    weights, masks = make(gen)
    weights = [w.cuda() for w in weights]
    masks = [m.cuda() for m in masks]
    lst = weights if which == "weights" else masks
    lst[2] = lst[2].cpu()
    raises_same(weights, masks, 0.5, "global", ValueError, f"{which}[2]")
