"""Tickets on disk: bit-packed masks (numpy.packbits order, ~1 bit per weight) plus the
snapshot in a safetensors file, loaded without pickle, written atomically, validated on load."""
from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import pytest
import torch
from torch import nn

from lth_fast import MaskedSGD, Pruner
from lth_fast.pruning.ticket import pack_bits, unpack_bits

from tests.helpers.ops import one_thread  # noqa: F401
from tests.helpers.training import Net, train, weights


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000, 70001])
def test_pack_bits_is_numpy_packbits(n):
    mask = torch.rand(n, generator=torch.Generator().manual_seed(n)) < 0.5
    packed = pack_bits(mask)
    assert torch.equal(packed, torch.from_numpy(np.packbits(mask.numpy())))
    assert torch.equal(unpack_bits(packed, (n,), "x"), mask)


def safetensors_header(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(size)), size


def test_ticket_round_trip(tmp_path, monkeypatch):
    model = Net()
    pruner = Pruner(model)
    pruner.snapshot()
    train(model, MaskedSGD(model.parameters(), lr=0.05, masks=pruner), n=2)
    pruner.prune(0.6)
    path = tmp_path / "ticket.safetensors"
    pruner.save_ticket(path)
    assert os.listdir(tmp_path) == ["ticket.safetensors"], "no temporary file left behind"

    header, size = safetensors_header(path)
    masks_bytes = snap_bytes = dense_bytes = 0
    for n, m in pruner.masks.items():
        entry = header[f"{n}.mask"]
        assert entry["dtype"] == "U8" and entry["shape"] == [(m.numel() + 7) // 8]
        masks_bytes += entry["data_offsets"][1] - entry["data_offsets"][0]
        s = header[f"{n}.snapshot"]
        snap_bytes += s["data_offsets"][1] - s["data_offsets"][0]
    for n in json.loads(header["__metadata__"]["dense"]):   # the rest of the network, whole
        d = header[f"{n}.rewind"]
        dense_bytes += d["data_offsets"][1] - d["data_offsets"][0]
    assert dense_bytes > 0
    total = sum(m.numel() for m in pruner.masks.values())
    assert masks_bytes <= total / 8 + len(pruner.names), "masks take 1 bit per weight"
    assert os.path.getsize(path) == 8 + size + masks_bytes + snap_bytes + dense_bytes

    def no_pickle(*a, **k):
        raise AssertionError("a ticket must load without pickle")
    monkeypatch.setattr(torch, "load", no_pickle)
    import pickle
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    model2 = Net(seed=5)
    loaded = Pruner.load_ticket(path, model2)
    assert loaded.names == pruner.names
    for n in pruner.names:
        assert torch.equal(loaded.masks[n], pruner.masks[n])
    loaded.rewind()
    pruner.rewind()
    assert all(torch.equal(a, b) for a, b in zip(weights(loaded), weights(pruner)))
    fresh = Pruner(Net(seed=6))
    assert fresh.restore_ticket(path) is fresh
    assert all(torch.equal(fresh.masks[n], pruner.masks[n]) for n in pruner.names)


def test_ticket_overwrite_is_atomic(tmp_path, monkeypatch):
    pruner = Pruner(Net())
    pruner.snapshot()
    path = tmp_path / "t.safetensors"
    pruner.save_ticket(path)
    good = path.read_bytes()
    pruner.prune(0.5)
    from lth_fast import atomic

    def crash(filename, header, data):
        with open(filename, "wb") as f:
            f.write(header)
            f.write(data[:len(data) // 2])
        raise OSError("disk full")
    monkeypatch.setattr(atomic, "write_bytes", crash)
    with pytest.raises(OSError, match="disk full"):
        pruner.save_ticket(path)
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["t.safetensors"]
    monkeypatch.undo()
    pruner.save_ticket(path)  # a successful save replaces the old ticket
    assert math.isclose(Pruner.load_ticket(path, Net()).density, 0.5, abs_tol=1e-3)


def test_ticket_errors(tmp_path):
    pruner = Pruner(Net())
    pruner.snapshot()
    path = tmp_path / "t.safetensors"
    pruner.save_ticket(path)
    with pytest.raises(ValueError, match="shape"):
        Pruner.load_ticket(path, Net(hidden=16))
    with pytest.raises(ValueError, match="has no parameters"):
        Pruner.load_ticket(path, nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="missing"):
        Pruner(Net(), exclude="classifier.3").restore_ticket(path)
    with pytest.raises(FileNotFoundError):
        Pruner.load_ticket(tmp_path / "none.safetensors", Net())
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a readable safetensors"):
        Pruner.load_ticket(junk, Net())
    import safetensors.torch
    other = tmp_path / "other.safetensors"
    safetensors.torch.save_file({"x": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not an lth_fast ticket"):
        Pruner.load_ticket(other, Net())
