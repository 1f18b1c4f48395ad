"""Fixtures shared by every test (helper functions live in tests.helpers; see tests/__init__.py
for how they are imported)."""
from __future__ import annotations

import zlib

import pytest
import torch

from tests.helpers.targets import ISAS, TARGETS, use_isa


@pytest.fixture(params=TARGETS)
def target(request, monkeypatch):
    """The device the fast op runs on; on CPU the ISA is forced (skipped if unsupported)."""
    device, isa = request.param
    if isa is not None:
        use_isa(isa, monkeypatch)
    return device


@pytest.fixture(params=ISAS)
def isa(request, monkeypatch):
    use_isa(request.param, monkeypatch)
    return request.param


@pytest.fixture
def gen(request):
    """A generator seeded from the test id (with its parameters): failures reproduce."""
    return torch.Generator().manual_seed(zlib.crc32(request.node.nodeid.encode()))
