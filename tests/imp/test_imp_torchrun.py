"""IMP under torchrun (real processes, gloo on CPU): `torchrun --standalone --nproc-per-node 2
-m lth_fast imp ...` with DDP and with FSDP2 (--fsdp). Rank 0 writes the run directory; two
levels end with the masks of a one-process run, except where float summation order (the
ranks' partial gradients) moves a weight across the threshold; a resumed sharded run ends as
an uninterrupted one, and a run resumes at another world size."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from lth_fast.pruning import ticket

from tests.helpers import ROOT
from tests.helpers.imp import learnable_mnist


TORCHRUN = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return learnable_mnist(str(tmp_path_factory.mktemp("mnist")))


def _imp(data_dir, run_dir, *, ranks=None, fsdp=False, levels=2):
    args = ["-m", "lth_fast", "imp", "--dataset", "mnist", "--data-dir", data_dir,
            "--val-size", "100", "--batch-size", "20", "--iterations", "30", "--eval-every",
            "10", "--levels", str(levels), "--run-dir", str(run_dir), "--no-progress"]
    args += ["--fsdp"] if fsdp else []
    cmd = ([TORCHRUN, "--standalone", "--nproc-per-node", str(ranks)] if ranks
           else [sys.executable]) + args
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _masks(run_dir, level):
    return ticket.load_masks(os.path.join(run_dir, f"level_{level:02d}", "masks.safetensors"))


def _assert_masks_match(single, other, level):
    """Equal, but where the one-process run's weight lies within 1e-4 (relative) of the
    level's threshold: there the ranks' other summation order may decide."""
    a, b = _masks(single, level), _masks(other, level)
    prev = load_file(os.path.join(single, f"level_{level - 1:02d}", "checkpoint.safetensors"))
    newly = {n: _masks(single, level - 1).masks[n] & ~a.masks[n] for n in a.names}
    t = max(float(prev[n].abs()[newly[n]].max()) for n in a.names if newly[n].any())
    for n in a.names:
        differ = a.masks[n] != b.masks[n]
        near = (prev[n].abs() - t).abs() <= 1e-4 * t
        assert not (differ & ~near).any(), f"level {level}, {n}: masks differ far from the cut"


@pytest.fixture(scope="module")
def single(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("single") / "run"
    _imp(data_dir, run)
    return str(run)


@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_two_levels_under_torchrun_match_one_process(data_dir, single, tmp_path, fsdp):
    run = tmp_path / "run"
    out = _imp(data_dir, run, ranks=2, fsdp=fsdp)
    assert out.count("level  remaining") == 1  # rank 0 alone reports
    for level in (1, 2):
        _assert_masks_match(single, str(run), level)
    assert sorted(os.listdir(run)) == sorted(os.listdir(single))


def test_sharded_run_resumes_as_uninterrupted_and_at_another_world_size(data_dir, tmp_path):
    whole, resumed, moved = tmp_path / "whole", tmp_path / "resumed", tmp_path / "moved"
    _imp(data_dir, whole, ranks=2, fsdp=True)
    _imp(data_dir, resumed, ranks=2, fsdp=True, levels=1)
    _imp(data_dir, resumed, ranks=2, fsdp=True)  # level 2 after a restart
    _imp(data_dir, moved, ranks=2, fsdp=True, levels=1)
    _imp(data_dir, moved)  # level 2 in one process
    for n, m in _masks(whole, 2).masks.items():
        assert torch.equal(_masks(resumed, 2).masks[n], m)
    _assert_masks_match(str(whole), str(moved), 2)


def test_fsdp_without_torchrun_is_a_flag_error(tmp_path, capsys, monkeypatch):
    from lth_fast.cli import main
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["imp", "--fsdp", "--run-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["lth-fast imp: --fsdp shards the model over the ranks torchrun starts; run "
                   "it under torchrun --nproc-per-node N (N >= 2)"]
    assert not (tmp_path / "x").exists()
