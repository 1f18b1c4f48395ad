"""IMP on a character-level GPT (preset gpt_pydoc, shrunk to seconds): the level loop with both
rewinding arms and both controls, per-layer results, the corpus checksum in the config, and
resumption after a real SIGKILL."""
from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from lth_fast.imp import preset, run_imp
from lth_fast.imp import build, driver
from lth_fast.pruning import ticket

from tests.helpers import ROOT
from tests.helpers.imp import kill_after_level, without_times


TINY = dict(n_layer=2, n_head=2, n_embd=8, block_size=16, batch_size=8, iterations=24,
            eval_every=8, warmup=2, rewind_iteration=4, levels=2)
BLOCK_MATRICES = [f"blocks.{b}.{m}.weight" for b in range(2)
                  for m in ("attn.qkv", "attn.out", "mlp.fc_in", "mlp.fc_out")]


def test_two_levels_both_arms_both_controls(tmp_path, monkeypatch):
    starts = []
    real = driver.train_run
    monkeypatch.setattr(driver, "train_run", lambda model, pruner, task, cfg, **kw: (
        starts.append(kw["start"]), real(model, pruner, task, cfg, **kw))[1])
    cfg = preset("gpt_pydoc", **TINY)
    levels = run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    # level 0 dense from 0; then ticket, reinit, random from k = 4 and the init arm from 0
    assert starts == [0] + [4, 4, 4, 0] * 2
    assert [round(m["remaining"], 1) for m in levels] == [100.0, 80.0, 64.0]
    for m in levels[1:]:
        assert set(m["branches"]) == {"ticket", "reinit", "random", "init"}
        for b in m["branches"].values():
            assert b["early_stop_val_loss"] == min(e[1] for e in b["evals"])
            assert b["test_loss_at_early_stop"] > 0
    saved = ticket.load_masks(tmp_path / "run" / "level_02" / "masks.safetensors")
    assert list(saved.names) == BLOCK_MATRICES  # embeddings, norms, biases, tied head dense
    assert abs(sum(int(m.sum()) for m in saved.masks.values())
               / sum(m.numel() for m in saved.masks.values()) - 0.64) < 1e-3
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    corpus = driver.load_task(cfg).corpus
    assert config["data"]["text_sha256"] == corpus.sha256
    assert config["data"]["text_python"] == corpus.python
    with open(tmp_path / "run" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(rows[2][f"left:{n}"]) for n in BLOCK_MATRICES] == [
        round(levels[2]["layers"][n], 3) for n in BLOCK_MATRICES]
    assert float(rows[1]["init_early_stop_val_loss"]) == \
        levels[1]["branches"]["init"]["early_stop_val_loss"]
    assert (tmp_path / "run" / "layers.png").stat().st_size > 1000
    # the checkpoint holds the tied embedding once, and a resumed run loads it back
    state = load_file(tmp_path / "run" / "level_02" / "checkpoint.safetensors")
    assert "wte.weight" in state and "head.weight" not in state


def test_another_text_is_refused_in_the_same_run_dir(tmp_path):
    cfg = preset("gpt_pydoc", **{**TINY, "levels": 0, "iterations": 2, "eval_every": 2,
                                 "warmup": 0, "rewind_iteration": 1})
    run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    # the same text from another Python release is the same experiment
    path = tmp_path / "run" / "config.json"
    path.write_text(path.read_text().replace(f'"{platform.python_version()}"', '"3.0.0"'))
    assert '"3.0.0"' in path.read_text()
    run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    other = preset("gpt_pydoc", **{**TINY, "levels": 0, "iterations": 2, "eval_every": 2,
                                   "warmup": 0, "rewind_iteration": 1}, text_sha256="0" * 64)
    with pytest.raises(ValueError, match="not that experiment's"):
        run_imp(other, tmp_path / "run", progress=False, log=lambda s: None)


def _cli(run_dir, levels=3):
    return [sys.executable, "-m", "lth_fast", "imp", "--preset", "gpt_pydoc", "--run-dir",
            str(run_dir), "--n-layer", "2", "--n-head", "2", "--n-embd", "8", "--block-size",
            "16", "--batch-size", "8", "--iterations", "24", "--eval-every", "8", "--warmup",
            "2", "--rewind-iteration", "4", "--levels", str(levels), "--no-progress"]


def test_resume_after_sigkill_matches_uninterrupted(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(_cli(whole), check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    killed = tmp_path / "killed"
    kill_after_level(_cli(killed), killed, 1, env, ROOT)  # within level 2
    assert not (killed / "level_03" / "metrics.json").exists()
    subprocess.run(_cli(killed), check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    load = lambda d: [json.loads((d / f"level_{i:02d}" / "metrics.json").read_text())  # noqa
                      for i in range(4)]
    assert without_times(load(killed)) == without_times(load(whole))
    for i in range(4):
        for f in ("checkpoint.safetensors", "masks.safetensors"):
            a = load_file(killed / f"level_{i:02d}" / f)
            b = load_file(whole / f"level_{i:02d}" / f)
            assert all(torch.equal(a[k], b[k]) for k in a), f"level {i} {f}"
    assert (killed / "summary.csv").read_text() == (whole / "summary.csv").read_text()


def test_cosine_schedule_after_warmup():
    from lth_fast.imp.train import lr_at
    cfg = preset("gpt_pydoc", lr=1e-3, min_lr=1e-4, warmup=10, iterations=110)
    assert lr_at(cfg, 0) == pytest.approx(1e-4) and lr_at(cfg, 9) == pytest.approx(1e-3)
    assert lr_at(cfg, 10) == pytest.approx(1e-3)
    assert lr_at(cfg, 60) == pytest.approx(5.5e-4)  # half way: the mean of lr and min_lr
    assert lr_at(cfg, 109) == pytest.approx(1e-4, rel=1e-2) and lr_at(cfg, 109) > 1e-4


def test_clipping_sees_only_the_alive_gradient(monkeypatch):
    """With grad_clip, the pruned entries' gradients are zeroed before the norm is taken."""
    from lth_fast.imp import train
    cfg = preset("gpt_pydoc", **{**TINY, "iterations": 1, "levels": 0, "warmup": 0,
                                 "rewind_iteration": 0, "rewind": "init", "controls": ()})
    task = driver.load_task(cfg)
    model = build.new_model(cfg, task, 0)
    pruner = build.new_pruner(model, cfg)
    pruner.prune(0.5)
    seen = {}

    def clip(params, max_norm):
        seen.update({n: p.grad.clone() for n, p in model.named_parameters()})
    monkeypatch.setattr(train.torch.nn.utils, "clip_grad_norm_", clip)
    train.train_run(model, pruner, task, cfg)
    for n, m in pruner.masks.items():
        assert bool((seen[n][~m] == 0).all()) and bool((seen[n][m] != 0).any()), n


def test_fsdp_refuses_the_tied_head_before_sharding():
    from lth_fast.imp.parallel import Parallel
    from lth_fast.models import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=4))
    with pytest.raises(ValueError, match=r"ties \['head.weight'\].*leave out --fsdp"):
        Parallel(world=2, rank=0, mode="fsdp").wrap(model)


@pytest.mark.parametrize("flags, status, message", [
    (["--dataset", "text", "--text-file", "/nonexistent/input.txt"], 1,
     "text file '/nonexistent/input.txt': cannot be read"),
    (["--dataset", "text"], 2, "dataset 'text' reads a text file, --text-file"),
    (["--dataset", "mnist5k"], 2, "--model 'gpt' trains on the text datasets ('pydoc', "
                                  "'text'), not --dataset 'mnist5k'"),
    (["--controls", "init", "--rewind", "init", "--rewind-iteration", "0"], 2,
     "'init' arm (rewinding to init) of --controls is the second arm of late rewinding")])
def test_cli_errors_are_one_line_and_claim_no_run_dir(tmp_path, capsys, flags, status, message):
    from lth_fast.cli import main
    run = tmp_path / "run"
    assert main(["imp", "--preset", "gpt_pydoc", "--run-dir", str(run), *flags]) == status
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not run.exists()
