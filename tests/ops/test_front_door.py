"""One front door per op (docs/semantics.md, "Inputs and devices"): torch.ops.lth_fast.* runs the
fused kernel where lth_fast._C has one for the device and the pure-PyTorch reference otherwise
(its default kernel), for every caller; the reference passes opcheck on that path; and
lth_fast.reference imports and runs without lth_fast._C."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import lth_fast
from lth_fast.ops import library

OPS = ("prune_", "masked_sgd_", "masked_adam_", "rewind_")


def _args(op, gen):
    shapes = ((10, 7), (33,), (4, 4, 4))
    t = lambda: [torch.randn(s, generator=gen) for s in shapes]  # noqa: E731
    masks = [torch.rand(s, generator=gen) < 0.6 for s in shapes]
    if op == "prune_":
        return (t(), masks, [0.3], [], False)
    if op == "masked_sgd_":
        return (t(), t(), masks, t(), 0.1, 0.9, 0.0, 1e-3, True, False, False)
    if op == "masked_adam_":
        sq = [x.abs() for x in t()]
        return (t(), t(), masks, t(), sq, [x.clone() for x in sq], 1e-3, 0.9, 0.999, 1e-8,
                1e-2, 3.0, True, False, True)
    return (t(), t(), masks)


@pytest.mark.parametrize("op", OPS)
def test_the_reference_is_the_default_kernel(op):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"lth_fast::{op}",
                                                         "CompositeExplicitAutograd")
    assert library.has_fused_kernel(op, "cpu")
    assert not library.has_fused_kernel(op, "mps")


@pytest.mark.parametrize("op", OPS)
def test_opcheck_on_the_reference_path(op, gen):
    """The default kernel stands in for the CPU one (a device without a fused kernel is what
    it serves); opcheck runs the op through it, and the fused kernel is back afterwards."""
    calls = []

    def spy(*args):
        calls.append(op)
        return library.DEFAULTS[op](*args)

    overload = getattr(torch.ops.lth_fast, op).default
    lib = torch.library.Library("lth_fast", "IMPL")
    try:
        lib.impl(op, spy, "CPU", allow_override=True)
        torch.library.opcheck(overload, _args(op, gen))
        assert calls, "the op did not run the reference"
    finally:
        lib._destroy()
    calls.clear()
    overload(*_args(op, gen))
    assert not calls, "the fused CPU kernel was not restored"


def test_empty_lists_run_the_reference():
    """No tensor to dispatch on: the default kernel answers, with the ops' own errors."""
    assert lth_fast.prune_([], [], 0.5).pruned == 0
    lth_fast.masked_sgd_([], [], [], [], lr=0.1)
    with pytest.raises(ValueError, match=r"masked_sgd_: invalid learning rate -1.0"):
        lth_fast.masked_sgd_([], [], [], [], lr=-1.0)
    with pytest.raises(ValueError, match=r"prune_: amount\[0\] = 2 exceeds the 0 alive"):
        lth_fast.prune_([], [], 2)


def test_reference_imports_without_the_extension():
    code = textwrap.dedent("""
        import sys
        sys.modules["lth_fast._C"] = None  # as if it were not built
        import torch
        import lth_fast.reference as ref
        w, m = [torch.tensor([3.0, -1.0, 2.0])], [torch.ones(3, dtype=torch.bool)]
        assert ref.prune_(w, m, 1).pruned == 1 and m[0].tolist() == [True, False, True]
        import lth_fast
        assert lth_fast.ops.BUILD_ERROR is not None
        assert "lth_fast.ops.library" not in sys.modules
        try:
            lth_fast.Pruner
        except ImportError as e:
            assert "lth_fast._C" in str(e), e
        else:
            raise AssertionError("lth_fast.Pruner without the extension")
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
