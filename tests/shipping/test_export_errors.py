"""An exported ticket file is checked part by part: every damaged or foreign file is a one-line
ValueError naming the file (and the tensor), never a crash or safetensors' own error. The files
are written by the format's encoder from models built here (no IMP run needed)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from lth_fast import load_exported
from lth_fast.shipping.architecture import build, saved_names
from lth_fast.shipping.format import encode, read_exported

from tests.helpers.export import outputs_equal, rewrite


def _write(path, arch, dtype="float32", density=0.3, seed=0):
    """A model of `arch` with random masks on its Linear/Conv weights (pruned entries 0),
    written as an exported file; returns (model, masks)."""
    torch.manual_seed(seed)
    model = build(arch).eval()
    masks = {n: torch.rand(p.shape) < density for n, p in model.named_parameters()
             if p.dim() > 1}
    with torch.no_grad():
        for n, m in masks.items():
            model.get_parameter(n).mul_(m)
        for b in model.buffers():  # batch-norm statistics that are not the defaults
            if b.is_floating_point():
                b.add_(1)
            else:
                b.fill_(7)
    state = model.state_dict()
    params = dict(model.named_parameters())
    dt = getattr(torch, dtype)
    dense = {k: (state[k].to(dt) if k in params else state[k])
             for k in saved_names(model) if k not in masks}
    tensors, meta = encode(arch, dtype, masks, state, dense, {"level": 3, "density": density},
                           "0.0")
    save_file(tensors, str(path), metadata=meta)
    return model, masks


LENET3 = {"model": "lenet_300_100", "input_shape": [1, 28, 28], "num_classes": 3}
RESNET = {"model": "resnet20", "input_shape": [3, 32, 32], "num_classes": 10}


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.safetensors"
    _write(path, LENET3)  # fc3 is 3 x 100: 300 bits, 4 of padding
    return path


def test_buffers_stay_as_they_are_and_resnet_round_trips(tmp_path):
    model, masks = _write(tmp_path / "r.safetensors", RESNET)
    loaded = load_exported(tmp_path / "r.safetensors")
    x = torch.randn(2, 3, 32, 32)
    assert outputs_equal(model, loaded, x)
    _write(tmp_path / "h.safetensors", RESNET, "float16")
    ex = read_exported(tmp_path / "h.safetensors")
    assert ex.dense["bn.running_mean"].dtype == torch.float32  # buffers as the model holds them
    assert ex.dense["bn.num_batches_tracked"].dtype == torch.int64
    assert ex.dense["bn.weight"].dtype == torch.float16       # parameters in the file's dtype
    half = load_exported(tmp_path / "h.safetensors")
    assert half.bn.running_mean.dtype == torch.float16 and int(half.bn.num_batches_tracked) == 7


def test_load_does_not_touch_the_callers_random_stream(good):
    torch.manual_seed(5)
    a = torch.rand(3)
    torch.manual_seed(5)
    load_exported(good)
    assert torch.equal(torch.rand(3), a)


def _meta(key, value):
    return lambda m: m.__setitem__(key, value)


CASES = [
    ("wrong format", None, _meta("format", "lth_fast.ticket"), "is not an exported lth_fast"),
    ("wrong version", None, _meta("version", "2"), "has format version '2'"),
    ("bad dtype", None, _meta("dtype", "int8"), "metadata dtype 'int8'"),
    ("bad architecture", None, _meta("architecture", "{"), "'architecture' is missing or"),
    ("unknown model", None, _meta("architecture", json.dumps({"model": "mlp9"})),
     "does not build a model (unknown model 'mlp9')"),
    ("bad pruned", None, _meta("pruned", "[[1, 2]]"), "'pruned' is missing or malformed"),
    ("missing tensor", lambda t: t.pop("fc1.bias"), None, ": missing tensors ['fc1.bias']"),
    ("unexpected tensor", lambda t: t.__setitem__("x", torch.zeros(1)), None,
     ": unexpected tensors ['x']"),
    ("counts", lambda t: t.__setitem__("fc2.weight.values", t["fc2.weight.values"][1:]), None,
     "fc2.weight.values holds"),
    ("padding bits", lambda t: t["fc3.weight.mask"].__setitem__(-1, 0x0F | int(
        t["fc3.weight.mask"][-1])), None, "fc3.weight.mask has non-zero padding bits"),
    ("mask length", lambda t: t.__setitem__("fc1.weight.mask", t["fc1.weight.mask"][1:]), None,
     "fc1.weight.mask must be uint8"),
    ("values dtype", lambda t: t.__setitem__("fc1.weight.values", t["fc1.weight.values"]
                                             .double()), None, "must be 1-D float32"),
    ("dense dtype", lambda t: t.__setitem__("fc1.bias", t["fc1.bias"].double()), None,
     "fc1.bias is float64, want float32"),
    ("dense shape", lambda t: t.__setitem__("fc1.bias", t["fc1.bias"][1:]), None,
     "fc1.bias is for shape [299]"),
    ("mask shape", None, lambda m: m.__setitem__("pruned", m["pruned"].replace(
        "[300, 784]", "[784, 300]")), "fc1.weight.mask is for shape [784, 300]"),
]


@pytest.mark.parametrize("what,tensors,meta,text", CASES, ids=[c[0] for c in CASES])
def test_a_damaged_file_is_one_line_naming_it(good, tmp_path, what, tensors, meta, text):
    bad = rewrite(good, tmp_path / "bad.safetensors", tensors, meta)
    with pytest.raises(ValueError) as e:
        load_exported(bad)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(bad)) and text in msg, msg


@pytest.mark.parametrize("cut", [0, 4, 100, -10])
def test_a_truncated_or_foreign_file_is_one_line(good, tmp_path, cut):
    raw = good.read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(raw[:cut] if cut else b"not a safetensors file at all")
    with pytest.raises(ValueError) as e:
        load_exported(bad)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{bad} is truncated or not a safetensors file")


def test_other_refusals(good, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_exported(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="dtype must be a floating torch.dtype"):
        load_exported(good, dtype=torch.int8)
    with pytest.raises(ValueError) as e:
        load_exported(good, semi_structured=True)
    msg = str(e.value)
    assert "\n" not in msg and "torch has no 2:4 sparse kernel on the CPU" in msg


def test_is_2_4():
    from lth_fast.shipping.semi_structured import is_2_4
    assert is_2_4(torch.tensor([[1, 1, 0, 0, 0, 1, 0, 1]], dtype=torch.bool))
    assert not is_2_4(torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0]], dtype=torch.bool))
    assert not is_2_4(torch.ones(2, 6, dtype=torch.bool))  # not groups of 4
