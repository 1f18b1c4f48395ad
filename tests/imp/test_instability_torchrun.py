"""Instability analysis and `--rewind auto` under torchrun (real processes, gloo on CPU): the
children train one after another, each data-parallel over the ranks as a run's level does, and
rank 0 alone writes. What differs from one process is the order in which the ranks' partial
gradients are summed, so the comparison is IMP's distributed rule: the same files, the
children's weights and the line's losses equal to float-summation tolerance, and an error on
the line differing only by the few test examples whose prediction such a difference flips."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import ROOT
from tests.helpers.imp import learnable_mnist

TORCHRUN = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
pytestmark = pytest.mark.skipif(not torch.distributed.is_gloo_available(),
                                reason="needs torch.distributed with gloo")
RUN = ["--dataset", "mnist", "--val-size", "100", "--batch-size", "20", "--iterations", "30",
       "--eval-every", "10", "--levels", "2", "--no-progress"]
# the children of a torchrun analysis against those of one process: weights and losses to
# float-summation tolerance; errors to a few of the test digits (learnable_mnist's 200)
RTOL, ATOL, FLIPS = 1e-4, 1e-5, 3 / 200


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return learnable_mnist(str(tmp_path_factory.mktemp("mnist")))


def _cli(args, ranks=None) -> str:
    cmd = ([TORCHRUN, "--standalone", "--nproc-per-node", str(ranks)] if ranks
           else [sys.executable]) + ["-m", "lth_fast", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("run") / "run")
    _cli(["imp", *RUN, "--data-dir", data_dir, "--run-dir", d])
    return d


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _files(top):
    return sorted(os.path.relpath(os.path.join(d, f), top) for d, _, fs in os.walk(top)
                  for f in fs)


def _assert_close_rows(one, two, keys):
    assert len(one) == len(two)
    for a, b in zip(one, two):
        assert all(a[k] == b[k] for k in keys), (a, b)
        assert abs(float(a["error"]) - float(b["error"])) <= FLIPS, (a, b)
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=RTOL, abs=ATOL), (a, b)


def _assert_close_children(one, two):
    children = [f for f in _files(one) if f.endswith(".safetensors")]
    assert children and children == [f for f in _files(two) if f.endswith(".safetensors")]
    for f in children:
        a, b = load_file(os.path.join(one, f)), load_file(os.path.join(two, f))
        for n in a:
            assert torch.equal(a[n] == 0, b[n] == 0) or n.endswith("bias"), (f, n)
            torch.testing.assert_close(a[n], b[n], rtol=RTOL, atol=ATOL)


def test_instability_under_torchrun_matches_one_process(run, tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    shutil.copytree(run, one)
    shutil.copytree(run, two)
    args = ["--level", "0,2", "--at", "0,10", "--repeats", "1", "--points", "4"]
    _cli(["instability", one, *args])
    out = _cli(["instability", two, *args], ranks=2)
    assert out.count("| level |") == 1   # rank 0 alone reports
    a, b = (os.path.join(d, "analyses", "instability") for d in (one, two))
    assert _files(a) == _files(b)
    _assert_close_rows(_rows(os.path.join(a, "instability.csv")),
                       _rows(os.path.join(b, "instability.csv")),
                       ["level", "k", "repeat", "split", "alpha"])
    _assert_close_children(a, b)
    for x, y in zip(_rows(os.path.join(a, "summary.csv")), _rows(os.path.join(b, "summary.csv"))):
        assert (x["level"], x["k"]) == (y["level"], y["k"])
        assert float(x["test_loss_barrier_mean"]) == pytest.approx(
            float(y["test_loss_barrier_mean"]), rel=1e-3, abs=1e-4)
    # a restarted torchrun analysis keeps what it made, byte for byte
    before = {f: open(os.path.join(b, f), "rb").read() for f in _files(b)}
    _cli(["instability", two, *args], ranks=2)
    assert {f: open(os.path.join(b, f), "rb").read() for f in _files(b)} == before


@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_rewind_auto_under_torchrun_matches_one_process(data_dir, tmp_path, fsdp):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    auto = ["--rewind", "auto", "--rewind-candidates", "0,10", "--data-dir", data_dir]
    said = _cli(["imp", *RUN, *auto, "--run-dir", one]).count("--rewind auto: level 1's")
    out = _cli(["imp", *RUN, *auto, "--run-dir", two] + ["--fsdp"] * fsdp, ranks=2)
    assert said and out.count("--rewind auto: level 1's") == said   # rank 0 alone reports
    assert _files(one) == _files(two)
    p1, p2 = (json.load(open(os.path.join(d, "level_01", "metrics.json")))["rewind_probe"]
              for d in (one, two))
    assert p1["candidates"] == p2["candidates"] and p1["iterations"] == p2["iterations"]
    for x, y in zip(p1["table"], p2["table"]):
        assert x["k"] == y["k"]
        assert abs(x["test_error_barrier_mean"] - y["test_error_barrier_mean"]) <= 2 * FLIPS
    near = any(abs(r["test_error_barrier_mean"] - p1["threshold"]) <= 2 * FLIPS
               for r in p1["table"])
    assert near or p1["chosen"] == p2["chosen"]
    for k in p1["candidates"]:
        rel = os.path.join("rewind_probe", f"k_{k:06d}", "pair_000.json")
        keys = ["split", "alpha"]
        _assert_close_rows(*[[dict(zip(keys + ["error", "loss"], r)) for r in
                              json.load(open(os.path.join(d, rel)))["rows"]] for d in (one, two)],
                           keys)
    _assert_close_children(os.path.join(one, "rewind_probe"), os.path.join(two, "rewind_probe"))
