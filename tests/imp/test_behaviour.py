"""The experiment layer's behaviour is pinned by files written before it was reorganised
(tests/fixtures/behaviour, by its make.py): the same configs run today give the same masks,
the same metrics (every evaluation of every branch, the checksums of every checkpoint and
rewind point) and the same summary.csv, bit for bit. Both sides run with pinned numerics (one
thread, ATen's default kernels, MKL's reproducible mode, lth_fast's scalar kernels), so that the
comparison holds on every CPU kind; make.py rewrites the fixtures where a change is meant.

A run directory written before the change also resumes after it: nothing is retrained, and an
extra level trains from the old files."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from lth_fast.imp import IMPConfig, preset, run_imp
from lth_fast.pruning import ticket

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "behaviour")
MAKE = os.path.join(FIXTURES, "make.py")


def _metrics(run_dir, level):
    with open(os.path.join(run_dir, f"level_{level:02d}", "metrics.json")) as f:
        m = json.load(f)
    m.pop("seconds")
    for b in m["branches"].values():
        b.pop("seconds")
    return m


def _levels(run_dir):
    return sorted(d for d in os.listdir(run_dir) if d.startswith("level_"))


@pytest.mark.parametrize("name", ["lenet", "gpt"])
def test_same_masks_metrics_and_summary_as_before(name, tmp_path):
    run_dir = str(tmp_path / name)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, env.get("PYTHONPATH", "")])
    subprocess.run([sys.executable, MAKE, "--run", name, run_dir], check=True, env={
        **env, **_make().PINNED_ENV})
    old = os.path.join(FIXTURES, name)
    assert _levels(run_dir) == _levels(old)
    for level in range(len(_levels(old))):
        a = ticket.load_masks(os.path.join(old, f"level_{level:02d}", "masks.safetensors"))
        b = ticket.load_masks(os.path.join(run_dir, f"level_{level:02d}", "masks.safetensors"))
        assert list(a.names) == list(b.names)
        for n in a.names:
            assert torch.equal(a.masks[n], b.masks[n]), (name, level, n)
        # every evaluation, and the checksums of the checkpoint and rewind point (weights)
        assert _metrics(run_dir, level) == _metrics(old, level), (name, level)
    with open(os.path.join(old, "summary.csv")) as f, \
            open(os.path.join(run_dir, "summary.csv")) as g:
        assert f.read() == g.read()
    with open(os.path.join(old, "config.json")) as f, \
            open(os.path.join(run_dir, "config.json")) as g:
        assert IMPConfig.from_dict(json.load(f)) == IMPConfig.from_dict(json.load(g))


def _make():
    """The fixtures' make.py, as a module."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("behaviour_make", MAKE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_run_directory_written_before_resumes(tmp_path):
    """The GPT fixture's directory (flat config.json, levels 0..2) resumes: with the same
    levels nothing trains; with one more, only level 3 does, from the old files."""
    preset_name, overrides = _make().RUNS["gpt"]
    run_dir = tmp_path / "gpt"
    shutil.copytree(os.path.join(FIXTURES, "gpt"), run_dir)
    logs = []
    cfg = preset(preset_name, **overrides)
    levels = run_imp(cfg, run_dir, progress=False, log=logs.append)
    assert "resuming after level 2" in logs[0]
    assert [m["level"] for m in levels] == [0, 1, 2]
    with open(run_dir / "config.json") as f:
        assert json.load(f)["model"] == "gpt"  # the flat file, left as it was
    levels = run_imp(cfg.replace(levels=3), run_dir, progress=False, log=logs.append)
    assert [m["level"] for m in levels] == [0, 1, 2, 3]
    assert "resuming after level 2" in logs[-1]
    assert round(levels[3]["remaining"], 1) == 51.2
    with open(run_dir / "config.json") as f:  # rewritten in groups, with the corpus recorded
        saved = json.load(f)
    assert saved["pruning"]["levels"] == 3
    assert [d.split(":")[0] for d in IMPConfig.from_dict(saved).differences(
        cfg.replace(levels=3))] == ["data.text_sha256", "data.text_python"]
