"""lth-fast export and lth_fast.load_exported on tiny IMP runs: bit-for-bit round trips in
float32 (LeNet and the GPT), half-precision files holding exactly the cast, the file's size and
metadata, and the CLI with its status codes and one-line errors."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file

import lth_fast
from lth_fast.cli import main
from lth_fast.pruning import ticket
from lth_fast.imp import ExportUsageError, export_run
from lth_fast.shipping import load_exported

from tests.helpers.export import (gpt_run, header_and_data_bytes, lenet_run, outputs_equal,
                                  read_raw, ticket_model)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"lenet": lenet_run(root), "gpt": gpt_run(root)}


def _masks(run, level):
    return ticket.load_masks(f"{run}/level_{level:02d}/masks.safetensors").masks


@pytest.mark.parametrize("kind,level", [("lenet", 2), ("gpt", 1)])
def test_float32_round_trip_is_bit_for_bit(runs, kind, level, tmp_path):
    out = str(tmp_path / "t.safetensors")
    info = export_run(runs[kind], level, out=out)
    model, ticket_ = load_exported(out), ticket_model(runs[kind], level)
    assert not model.training
    want = ticket_.state_dict()
    assert set(model.state_dict()) == set(want)
    for k, v in model.state_dict().items():
        assert v.dtype == want[k].dtype and torch.equal(v, want[k]), k
    masks = _masks(runs[kind], level)
    params = dict(model.named_parameters())
    for n, m in masks.items():
        assert not params[n][~m].any(), f"{n}: a pruned entry is not exactly 0"
    x = (torch.randint(0, model.cfg.vocab_size, (3, 16)) if kind == "gpt"
         else torch.randn(5, 1, 28, 28))
    assert outputs_equal(model, ticket_, x)
    assert info["kept"] == sum(int(m.sum()) for m in masks.values())
    assert info["total"] == sum(m.numel() for m in masks.values())
    if kind == "gpt":  # the head stays tied to the embedding, stored once
        assert model.head.weight is model.wte.weight
        assert "head.weight" not in read_raw(out)[0]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_files_hold_the_cast(runs, dtype, tmp_path):
    run, dt = runs["lenet"], getattr(torch, dtype)
    full = export_run(run, 2, out=str(tmp_path / "f32.safetensors"))
    half = export_run(run, 2, dtype, out=str(tmp_path / "half.safetensors"))
    state = load_file(f"{run}/level_02/checkpoint.safetensors")
    masks = _masks(run, 2)
    tensors, meta = read_raw(half["path"])
    assert meta["dtype"] == dtype
    for n, m in masks.items():
        assert torch.equal(tensors[f"{n}.values"], state[n][m].to(dt))
    for n in ("fc1.bias", "fc2.bias", "fc3.bias"):
        assert torch.equal(tensors[n], state[n].to(dt))
    model = load_exported(half["path"])
    wide = load_exported(half["path"], dtype=torch.float32)
    for n, p in model.named_parameters():
        assert p.dtype == dt and torch.equal(p, state[n].to(dt)), n
        assert wide.get_parameter(n).dtype == torch.float32
        assert torch.equal(wide.get_parameter(n), state[n].to(dt).float()), n
    # the kept values at half the bytes; masks and header alike
    h32, d32 = header_and_data_bytes(full["path"])
    h16, d16 = header_and_data_bytes(half["path"])
    kept, dense = full["kept"], sum(state[n].numel() for n in state if n not in masks)
    assert d32 - d16 == 2 * (kept + dense)


def test_file_size_and_metadata(runs, tmp_path):
    run = runs["lenet"]
    info = export_run(run, 2, out=str(tmp_path / "t.safetensors"))
    masks = _masks(run, 2)
    state = load_file(f"{run}/level_02/checkpoint.safetensors")
    head, data = header_and_data_bytes(info["path"])
    mask_bytes = sum((m.numel() + 7) // 8 for m in masks.values())
    dense_bytes = 4 * sum(state[n].numel() for n in state if n not in masks)
    # the data is the packed masks, 4 bytes per kept weight, the dense tensors: nothing else
    assert data == mask_bytes + 4 * info["kept"] + dense_bytes
    assert info["bytes"] == head + data == os.path.getsize(info["path"])
    _, meta = read_raw(info["path"])
    assert meta["format"] == "lth_fast.exported" and meta["version"] == "1"
    assert meta["lth_fast_version"] == lth_fast.__version__
    assert json.loads(meta["architecture"]) == {"model": "lenet_300_100",
                                                "input_shape": [1, 28, 28], "num_classes": 10}
    assert json.loads(meta["pruned"]) == [[n, list(m.shape)] for n, m in masks.items()]
    assert json.loads(meta["dense"]) == ["fc1.bias", "fc2.bias", "fc3.bias"]
    assert meta["level"] == "2" and meta["dataset"] == "mnist"
    assert float(meta["density"]) == info["kept"] / info["total"]
    assert abs(info["density"] - 0.8 * 0.8) < 0.01  # two levels of 20% (the output layer 10%)


def test_gpt_architecture_comes_from_the_checkpoint(runs, tmp_path):
    info = export_run(runs["gpt"], 1, "float16", out=str(tmp_path / "g.safetensors"))
    _, meta = read_raw(info["path"])
    vocab = load_file(f"{runs['gpt']}/level_01/checkpoint.safetensors")["wte.weight"].shape[0]
    assert json.loads(meta["architecture"]) == {"model": "gpt", "vocab_size": vocab,
                                                "block_size": 16, "n_layer": 2, "n_head": 2,
                                                "n_embd": 8}
    model = load_exported(info["path"])
    assert model.wte.weight.dtype == torch.float16 and model.head.weight is model.wte.weight


def test_cli_export_and_its_errors(runs, tmp_path, capsys):
    run = runs["lenet"]
    assert main(["export", run, "--level", "1"]) == 0
    default = f"{run}/level_01/exported-float32.safetensors"
    assert os.path.exists(default) and default in capsys.readouterr().out
    out = str(tmp_path / "x.safetensors")
    assert main(["export", run, "--level", "2", "--dtype", "bfloat16", "--out", out]) == 0
    assert load_exported(out).fc1.weight.dtype == torch.bfloat16
    capsys.readouterr()
    cases = [(["export", str(tmp_path / "nope"), "--level", "1"], 2, "no such run directory"),
             (["export", str(tmp_path), "--level", "1"], 2, "not an lth-fast imp run"),
             (["export", run, "--level", "7"], 2, "--level 7: level 7 of"),
             (["export", run, "--level", "1", "--out", str(tmp_path / "no" / "x")], 2,
              "does not exist"),
             (["export", run, "--level", "1", "--out", str(tmp_path)], 2, "is a directory")]
    for argv, status, text in cases:
        assert main(argv) == status, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and text in err and err.startswith("lth-fast export: "), err
    with pytest.raises(SystemExit) as e:  # argparse's choices: status 2, one line
        main(["export", run, "--level", "1", "--dtype", "int8"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "--dtype" in err
    with pytest.raises(ExportUsageError, match="--dtype 'float64'"):
        export_run(run, 1, "float64")


def test_a_damaged_level_is_a_file_error(runs, tmp_path, capsys):
    import shutil
    from safetensors.torch import save_file
    from lth_fast.imp.run_dir import checksum
    run = str(tmp_path / "copy")
    shutil.copytree(runs["lenet"], run)
    ck = f"{run}/level_02/checkpoint.safetensors"
    state = load_file(ck)
    state["fc2.weight"][~_masks(run, 2)["fc2.weight"]] = 1.0
    save_file(state, ck)  # changed: the run's checksum finds it
    assert main(["export", run, "--level", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "level_02/checkpoint.safetensors does not match" in err
    metrics = json.loads(open(f"{run}/level_02/metrics.json").read())
    metrics["files"]["level_02/checkpoint.safetensors"] = checksum(ck)
    open(f"{run}/level_02/metrics.json", "w").write(json.dumps(metrics))
    assert main(["export", run, "--level", "2"]) == 1  # checksum recorded: the ticket is wrong
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fc2.weight has non-zero pruned entries" in err
    with open(ck, "r+b") as f:
        f.truncate(os.path.getsize(ck) // 2)
    assert main(["export", run, "--level", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "level_02/checkpoint.safetensors is truncated" in err
