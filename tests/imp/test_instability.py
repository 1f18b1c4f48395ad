"""Instability analysis (`lth-fast instability`, lth_fast.imp.analyses.instability): the line's
ends are the children bit for bit, the barrier is max - mean of the tidy CSV, pruned entries
stay 0, a killed analysis restarts to the same bytes, BatchNorm statistics are recomputed or
kept as asked, and bad input is one line that writes nothing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from lth_fast.cli import main
from lth_fast.imp import run_imp
from lth_fast.imp.analyses.instability import instability
from lth_fast.imp.instability.barrier import read_tidy
from lth_fast.imp.instability.children import read_record
from lth_fast.imp.instability.line import alphas, interpolate
from lth_fast.imp.run_dir import RunDir
from lth_fast.imp.tasks import load_task
from lth_fast.pruning import ticket

from tests.helpers import ROOT
from tests.helpers.imp import learnable_mnist, tiny

QUIET = dict(progress=False, log=lambda s: None)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return str(learnable_mnist(tmp_path_factory.mktemp("mnist")))


@pytest.fixture(scope="module")
def run(mnist, tmp_path_factory):
    """Two levels of a tiny LeNet run, short enough that the children still err."""
    d = tmp_path_factory.mktemp("run") / "run"
    run_imp(tiny(mnist, levels=2, iterations=12, eval_every=4, controls=(), keep_points=(4,)),
            d, **QUIET)
    return str(d)


def _out(run_dir, *names):
    return os.path.join(run_dir, "analyses", "instability", *names)


def test_the_ends_are_the_children_and_the_barrier_is_max_minus_mean(run):
    summary = instability(run, [0, 2], [0, 4], repeats=2, points=4, log=lambda s: None)
    tidy = read_tidy(_out(run, "instability.csv"))
    assert len(tidy) == 2 * 2 * 2 * 2 * 4   # level, k, repeat, split, alpha
    assert sorted({r["alpha"] for r in tidy}) == alphas(4) and alphas(4)[-1] == 1.0
    cfg = RunDir(run).read_config()
    task = load_task(cfg)
    task.start("cpu")
    from lth_fast.imp.build import new_model
    for level in (0, 2):
        for k in (0, 4):
            folder = _out(run, f"level_{level:02d}", f"k_{k:06d}")
            for rep in (0, 1):
                for alpha, index in ((1.0, 2 * rep), (0.0, 2 * rep + 1)):
                    record = read_record(folder, index)
                    # the run's own evaluation of the child (train_run's last) ...
                    row = [r for r in tidy if (r["level"], r["k"], r["repeat"], r["split"],
                                               r["alpha"]) == (level, k, rep, "test", alpha)]
                    assert row[0]["error"] == 1.0 - record["final_eval"][3]
                    # ... and its kept weights evaluated afresh, on both splits, bit for bit
                    model = new_model(cfg, task, 0, "cpu")
                    model.load_state_dict(load_file(os.path.join(
                        folder, f"child_{index:03d}.safetensors")))
                    model.eval()
                    for split in ("test", "train"):
                        loss, acc = task._split(model, getattr(task.data, split))
                        r = [r for r in tidy if (r["level"], r["k"], r["repeat"], r["split"],
                                                 r["alpha"]) == (level, k, rep, split, alpha)][0]
                        assert (r["error"], r["loss"]) == (1.0 - acc, loss)
                        assert record["metrics"][split] == {"error": r["error"],
                                                            "loss": r["loss"]}
    # the summary's barriers: max - mean of the ends, recomputed here from the tidy CSV
    for s in summary:
        for split in ("test", "train"):
            for m in ("error", "loss"):
                bars = []
                for rep in (0, 1):
                    line = sorted((r for r in tidy if (r["level"], r["k"], r["repeat"],
                                                       r["split"]) == (s["level"], s["k"], rep,
                                                                        split)),
                                  key=lambda r: r["alpha"])
                    bars.append(max(r[m] for r in line) - (line[0][m] + line[-1][m]) / 2)
                assert s[f"{split}_{m}_barrier_mean"] == sum(bars) / 2
        assert s["stable"] == (s["test_error_barrier_mean"] < 0.02)
    assert any(s["test_error_barrier_mean"] > 0 or s["test_loss_barrier_mean"] > 0
               for s in summary)
    for name in ("summary.csv", "barrier.png", "paths.png"):
        assert os.path.getsize(_out(run, name)) > 0


def test_pruned_entries_are_zero_in_the_children_and_at_every_alpha(run):
    instability(run, [2], [4], repeats=1, points=3, log=lambda s: None)
    masks = ticket.load_masks(os.path.join(run, "level_02", "masks.safetensors")).masks
    folder = _out(run, "level_02", "k_000004")
    w1, w2 = (load_file(os.path.join(folder, f"child_{i:03d}.safetensors")) for i in (0, 1))
    assert any(not torch.equal(w1[n], w2[n]) for n in w1)   # two data orders
    for a in alphas(7):
        w = interpolate(w1, w2, a)
        for n, m in masks.items():
            assert not w[n][~m].any(), (n, a)
    ends = interpolate(w1, w2, 1.0), interpolate(w1, w2, 0.0)
    assert all(torch.equal(ends[0][n], w1[n]) and torch.equal(ends[1][n], w2[n]) for n in w1)


def _cli(run_dir, *flags):
    return [sys.executable, "-m", "lth_fast", "instability", str(run_dir), "--level", "0,1",
            "--at", "0,4", "--repeats", "2", "--points", "3", *flags]


def test_kill_and_restart_ends_with_the_same_bytes(run, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    for d in (whole, cut):
        shutil.copytree(run, d, ignore=shutil.ignore_patterns("analyses"))
    done = subprocess.run(_cli(whole), env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    proc = subprocess.Popen(_cli(cut), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = cut / "analyses" / "instability" / "level_00" / "k_000004" / "child_001.json"
    deadline = time.time() + 120
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert first.exists() and not (cut / "analyses" / "instability" / "summary.csv").exists()
    kept = first.read_text()
    again = subprocess.run(_cli(cut), env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert first.read_text() == kept   # the finished child was kept, not trained again
    for name in ("instability.csv", "summary.csv"):
        a = (whole / "analyses" / "instability" / name).read_bytes()
        b = (cut / "analyses" / "instability" / name).read_bytes()
        assert a == b, name


@pytest.mark.parametrize("flags, message", [
    (["--level", "3", "--at", "0"], "--level 3: level 3 of"),
    (["--level", "0", "--at", "12"], "--at 12: k must be below the run's last iteration (12"),
    (["--level", "0", "--at", "0", "--points", "1"], "--points must be >= 2"),
    (["--level", "0", "--at", "0", "--repeats", "0"], "--repeats must be in [1, 100]"),
    (["--level", "0", "--at", "0", "--interpolated-bn"],
     "the BatchNorm flags apply to models with BatchNorm; lenet_300_100 has none"),
    (["--level", "0", "--at", "0", "--bn-batches", "4"], "the BatchNorm flags apply"),
    (["--level", "0", "--at", "0,0"], "--at must be distinct iterations >= 0"),
    (["--level", "0", "--at", "0", "--stable-below", "0"], "--stable-below must be > 0"),
])
def test_bad_input_is_one_line_and_writes_nothing(run, tmp_path, capsys, flags, message):
    d = tmp_path / "run"
    shutil.copytree(run, d, ignore=shutil.ignore_patterns("analyses"))
    assert main(["instability", str(d), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (d / "analyses").exists()


def test_other_directories_are_refused(run, tmp_path, capsys):
    assert main(["instability", str(tmp_path), "--level", "0", "--at", "0"]) == 2
    assert "is not an lth-fast imp run directory" in capsys.readouterr().err
    d = tmp_path / "other"   # its config says another model than its files hold
    shutil.copytree(run, d, ignore=shutil.ignore_patterns("analyses"))
    text = (d / "config.json").read_text().replace('"lenet_300_100"', '"resnet20"')
    (d / "config.json").write_text(text)
    assert main(["instability", str(d), "--level", "1", "--at", "0"]) == 2
    err = capsys.readouterr().err
    assert "level 1's masks are for" in err and err.count("\n") == 1
    assert not (d / "analyses").exists()


def test_batchnorm_statistics_recomputed_or_interpolated(tmp_path):
    data = learnable_mnist(str(tmp_path / "mnist"), n_train=120, n_test=40)
    d = tmp_path / "rn"
    run_imp(tiny(data, model="resnet20", levels=0, iterations=4, eval_every=2, controls=(),
                 batch_size=10, val_size=40), d, **QUIET)
    out = {}
    for bn in ("recompute", "interpolate"):
        s = instability(d, [0], [2], repeats=1, points=3, bn=bn,
                        bn_batches=2 if bn == "recompute" else None, log=lambda s: None)
        out[bn] = (s[0]["batchnorm"], read_tidy(_out(str(d), "instability.csv")))
    assert out["recompute"][0] == "recomputed (2 batches)"
    assert out["interpolate"][0] == "interpolated"
    mid = [[r for r in out[bn][1] if r["alpha"] == 0.5] for bn in out]
    assert mid[0] != mid[1]
    # kept as interpolated, the ends are the children with their own statistics
    record = read_record(_out(str(d), "level_00", "k_000002"), 0)
    end = [r for r in out["interpolate"][1] if r["alpha"] == 1.0 and r["split"] == "test"][0]
    assert record["metrics"]["test"] == {"error": end["error"], "loss": end["loss"]}


def test_a_language_model_reads_as_next_character_error_and_a_loss_rule(tmp_path):
    from lth_fast.imp import preset
    d = tmp_path / "gpt"
    run_imp(preset("gpt_pydoc", n_layer=1, n_head=2, n_embd=8, block_size=16, batch_size=8,
                   iterations=6, eval_every=3, warmup=2, rewind_iteration=2, levels=1,
                   controls=()), d, **QUIET)
    summary = instability(d, [1], [2], repeats=1, points=3, log=lambda s: None)
    tidy = read_tidy(_out(str(d), "instability.csv"))
    record = read_record(_out(str(d), "level_01", "k_000002"), 0)
    end = [r for r in tidy if r["alpha"] == 1.0 and r["split"] == "test"][0]
    assert end["loss"] == record["final_eval"][3]   # the run's own test loss, bit for bit
    assert 0.0 < end["error"] < 1.0 and record["metrics"]["test"]["error"] == end["error"]
    s = summary[0]
    assert s["rule"] == "test loss barrier < 0.02 x endpoint loss"
    assert s["stable"] == (s["test_loss_barrier_mean"] < 0.02 * s["test_loss_ends_mean"])
