"""The dtypes, CPU instruction sets (ISAs) and devices the op tests run on."""
from __future__ import annotations

import contextlib
import os

import pytest
import torch

import lth_fast

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
ISAS = ["scalar", "avx2", "avx512"]
ISA_ENV = "LTH_FAST_CPU_ISA"

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs CUDA: torch.cuda.is_available() is False")

# (device, isa) pairs: every CPU instruction set, and CUDA (where the ISA means nothing).
TARGETS = [pytest.param(("cpu", isa), id=f"cpu-{isa}") for isa in ISAS] + [
    pytest.param(("cuda", None), id="cuda", marks=needs_cuda)]


@contextlib.contextmanager
def isa_env(isa):
    """Forces the CPU kernels onto `isa` (None: leave the choice to the library)."""
    old = os.environ.get(ISA_ENV)
    try:
        if isa is None:
            os.environ.pop(ISA_ENV, None)
        else:
            os.environ[ISA_ENV] = isa
        yield
    finally:
        if old is None:
            os.environ.pop(ISA_ENV, None)
        else:
            os.environ[ISA_ENV] = old


def isa_unsupported(isa):
    """None if this CPU runs `isa`, else why not (lth_fast.cpu_isa raises RuntimeError)."""
    with isa_env(isa):
        try:
            got = lth_fast.cpu_isa()
        except RuntimeError as e:
            return f"this CPU does not support {isa}: {e}"
    assert got == isa, f"{ISA_ENV}={isa} but lth_fast.cpu_isa() says {got}"
    return None


SUPPORTED_ISAS = [isa for isa in ISAS if isa_unsupported(isa) is None]


def use_isa(isa, monkeypatch):
    """Sets the ISA for the rest of the test, or skips the test with the reason."""
    why = isa_unsupported(isa)
    if why:
        pytest.skip(why)
    monkeypatch.setenv(ISA_ENV, isa)
    assert lth_fast.cpu_isa() == isa
