"""lth_fast.imp: the level loop, its controls and artifacts, rewinding modes, resumption after a
real SIGKILL, same seed -> same results. Runs on tiny learnable MNIST-format files
(tests.helpers.imp), so a few dozen iterations teach LeNet."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from lth_fast.pruning import ticket
from lth_fast.imp import IMPConfig, preset, run_imp
from lth_fast.imp.tasks import DataOrder
from lth_fast.imp.train import lr_at
from lth_fast.imp.report import format_table, summary_rows, time_share

from tests.helpers import ROOT
from tests.helpers.imp import kill_after_level, learnable_mnist, tiny, without_times




def read_masks(path):
    """(names, masks) of an IMP level's masks file."""
    saved = ticket.load_masks(path)
    return list(saved.names), saved.masks


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return learnable_mnist(str(tmp_path_factory.mktemp("mnist")))


def test_two_levels_artifacts_masks_and_controls(data_dir, tmp_path):
    cfg = tiny(data_dir)
    run = tmp_path / "run"
    levels = run_imp(cfg, run, progress=False, log=lambda s: None)
    assert [m["level"] for m in levels] == [0, 1, 2]
    assert json.loads((run / "config.json").read_text()) == cfg.to_dict()
    assert (run / "imp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "summary.csv").read_text().splitlines()[0].startswith("level,remaining,")
    assert len((run / "summary.csv").read_text().splitlines()) == 4
    assert not [p for p in run.rglob("*.tmp")]

    prev = None
    for level in range(3):
        d = run / f"level_{level:02d}"
        names, masks = read_masks(d / "masks.safetensors")
        assert names == ["fc1.weight", "fc2.weight", "fc3.weight"]
        state = load_file(d / "checkpoint.safetensors")
        for n in names:
            assert not state[n][~masks[n]].any(), f"level {level}: pruned {n} not exactly 0"
            if prev is None:
                assert masks[n].all()
            else:  # layer-wise: round(rate * alive) more pruned, output layer at 10%
                rate = 0.1 if n == "fc3.weight" else 0.2
                alive = int(prev[n].sum())
                assert int(masks[n].sum()) == alive - round(rate * alive)
                assert not (masks[n] & ~prev[n]).any(), "a pruned weight came back"
        prev = masks
        m = levels[level]
        assert m["remaining"] == pytest.approx(
            100 * sum(int(v.sum()) for v in masks.values()) / sum(v.numel() for v in masks.values()))
        assert set(m["branches"]) == ({"ticket"} if level == 0 else {"ticket", "reinit", "random"})
        for b in m["branches"].values():
            assert [e[0] for e in b["evals"]] == [0, 10, 20, 30]
            es = min(b["evals"], key=lambda e: (e[1], e[0]))
            assert b["early_stop_iteration"] == es[0]
            assert b["test_accuracy_at_early_stop"] == es[3]
    ticket_acc = levels[2]["branches"]["ticket"]["final_test_accuracy"]
    assert ticket_acc > 0.5, "the tiny task is learnable; training did not happen"


def test_controls_use_the_same_sparsity(data_dir, tmp_path, monkeypatch):
    """The reinit control trains the ticket's masks from a fresh init, the random control a
    different mask with the same per-layer counts from the rewind point."""
    seen = _starts(monkeypatch)
    run_imp(tiny(data_dir, levels=1), tmp_path / "run", progress=False, log=lambda s: None)
    (_, dense0), (_, tw), (_, rw), (_, xw) = seen
    _, tmask = read_masks(tmp_path / "run" / "level_01" / "masks.safetensors")
    for n, m in tmask.items():
        assert torch.equal(tw[n], dense0[n] * m), "ticket: not rewound to init x mask"
        assert torch.equal(rw[n] != 0, m), "reinit: not the ticket's mask"
        assert (rw[n][m] != dense0[n][m]).all(), "reinit: the ticket's init, not a fresh one"
        xmask = xw[n] != 0
        assert torch.equal(xw[n], dense0[n] * xmask), "random pruning: not init x its mask"
        assert int(xmask.sum()) == int(m.sum()), "random pruning: another sparsity"
        assert not torch.equal(xmask, m)


def test_same_seed_same_results_and_other_seed_differs(data_dir, tmp_path):
    a = run_imp(tiny(data_dir), tmp_path / "a", progress=False, log=lambda s: None)
    b = run_imp(tiny(data_dir), tmp_path / "b", progress=False, log=lambda s: None)
    c = run_imp(tiny(data_dir, seed=1), tmp_path / "c", progress=False, log=lambda s: None)
    assert without_times(a) == without_times(b)
    assert without_times(a) != without_times(c)
    for level in range(3):
        f = f"level_{level:02d}/checkpoint.safetensors"
        sa, sb = load_file(tmp_path / "a" / f), load_file(tmp_path / "b" / f)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_rerun_redoes_nothing_refuses_another_config_and_extends(data_dir, tmp_path):
    run = tmp_path / "run"
    first = run_imp(tiny(data_dir, levels=1), run, progress=False, log=lambda s: None)
    mtime = os.path.getmtime(run / "level_01" / "metrics.json")
    again = run_imp(tiny(data_dir, levels=1), run, progress=False, log=lambda s: None)
    assert without_times(again) == without_times(first)
    assert os.path.getmtime(run / "level_01" / "metrics.json") == mtime
    with pytest.raises(ValueError, match=r"different experiment.*lr: 0\.0012 != 0\.01"):
        run_imp(tiny(data_dir, levels=1, lr=0.01), run, progress=False, log=lambda s: None)
    longer = run_imp(tiny(data_dir, levels=2), run, progress=False, log=lambda s: None)
    assert os.path.getmtime(run / "level_01" / "metrics.json") == mtime  # extended, not redone
    whole = run_imp(tiny(data_dir, levels=2), tmp_path / "whole", progress=False,
                    log=lambda s: None)
    assert without_times(longer) == without_times(whole)
    assert json.loads((run / "config.json").read_text())["pruning"]["levels"] == 2


def test_missing_summary_is_rewritten_on_rerun(data_dir, tmp_path):
    """summary.csv and imp.png are derived from the level files: a rerun of a finished run
    writes them again when they are gone."""
    run = tmp_path / "run"
    run_imp(tiny(data_dir, levels=1), run, progress=False, log=lambda s: None)
    want = (run / "summary.csv").read_text()
    os.remove(run / "summary.csv")
    os.remove(run / "imp.png")
    run_imp(tiny(data_dir, levels=1), run, progress=False, log=lambda s: None)
    assert (run / "summary.csv").read_text() == want and (run / "imp.png").exists()


@pytest.mark.parametrize("bad", [dict(device="cuda:99"), dict(data_dir="/nonexistent/mnist"),
                                 dict(val_size=10**9)], ids=["device", "data-dir", "val-size"])
def test_a_run_that_fails_to_start_leaves_no_config(data_dir, tmp_path, bad):
    """config.json is written only once the experiment has started (the data loads, the device
    exists, the model builds), so the corrected command is not refused afterwards."""
    run = tmp_path / "run"
    with pytest.raises(Exception):
        run_imp(tiny(data_dir, levels=0, **bad), run, progress=False, log=lambda s: None)
    assert not (run / "config.json").exists()
    run_imp(tiny(data_dir, levels=0), run, progress=False, log=lambda s: None)
    assert json.loads((run / "config.json").read_text())["pruning"]["levels"] == 0


def _starts(monkeypatch):
    """Records (start iteration, weights) of every train_run call the driver makes."""
    from lth_fast.imp import driver

    seen = []
    real = driver.train_run

    def spy(model, pruner, data, cfg, start=0, **kw):
        seen.append((start, {k: v.detach().clone() for k, v in model.state_dict().items()}))
        return real(model, pruner, data, cfg, start=start, **kw)

    monkeypatch.setattr(driver, "train_run", spy)
    return seen


@pytest.mark.parametrize("mode", ["init", "iteration", "lr"])
def test_rewind_modes(data_dir, tmp_path, monkeypatch, mode):
    """The level-1 ticket starts from: init x mask at iteration 0 (init); the dense network's
    weights at iteration k x mask, at k (iteration); the trained level-0 weights x mask, at k,
    with the learning-rate schedule replayed from k (lr, Renda et al.)."""
    from lth_fast.imp.build import new_model, new_pruner
    from lth_fast.imp.tasks import load_task
    from lth_fast.imp.train import train_run

    k = 0 if mode == "init" else 10
    cfg = tiny(data_dir, levels=1, controls=(), rewind=mode, rewind_iteration=k)
    seen = _starts(monkeypatch)
    run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    (start0, init), (start1, ticket_w) = seen
    _, masks = read_masks(tmp_path / "run" / "level_01" / "masks.safetensors")
    point = load_file(tmp_path / "run" / "rewind_point.safetensors")
    trained = load_file(tmp_path / "run" / "level_00" / "checkpoint.safetensors")
    assert start0 == 0 and start1 == k
    if mode == "init":
        assert all(torch.equal(point[n], init[n]) for n in init)
    else:  # the rewind point is the dense network after k iterations, reproduced here
        short = cfg.replace(iterations=k, rewind="init", rewind_iteration=0)
        model = new_model(cfg, load_task(cfg), cfg.seed)
        train_run(model, new_pruner(model, cfg), load_task(short), short)
        assert all(torch.equal(point[n], v) for n, v in model.state_dict().items())
        assert not torch.equal(point["fc1.weight"], init["fc1.weight"])
    source = trained if mode == "lr" else point
    for n, v in ticket_w.items():
        want = source[n] * masks[n] if n in masks else source[n]
        assert torch.equal(v, want), f"{mode}: level-1 {n} does not start from its source"


def test_global_scope_ignores_layers(data_dir, tmp_path):
    cfg = tiny(data_dir, levels=1, scope="global", output_rate=None, ignore=("fc3.weight",),
               controls=())
    levels = run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    names, masks = read_masks(tmp_path / "run" / "level_01" / "masks.safetensors")
    assert names == ["fc1.weight", "fc2.weight"]
    total = sum(m.numel() for m in masks.values())
    assert total - sum(int(m.sum()) for m in masks.values()) == round(0.2 * total)
    assert set(levels[1]["branches"]) == {"ticket"}


def test_data_order_fast_forwards_and_lr_schedule():
    a, b = DataOrder(100, 7, seed=3), DataOrder(100, 7, seed=3)
    seq = [a.indices(i) for i in range(40)]
    assert all(torch.equal(b.indices(i), seq[i]) for i in (33, 5, 14, 39))
    assert sorted(torch.cat(seq[:14]).tolist()) == sorted(set(torch.cat(seq[:14]).tolist()))
    assert not torch.equal(torch.cat(seq[:14]), torch.cat(seq[14:28]))
    cfg = IMPConfig.of(lr=1.0, warmup=4, milestones=(10, 20), gamma=0.5)
    assert [lr_at(cfg, i) for i in (0, 3, 9, 10, 19, 20)] == [0.25, 1.0, 1.0, 0.5, 0.5, 0.25]
    with pytest.raises(ValueError, match="batch_size 8 is larger than the training set"):
        DataOrder(5, 8, 0)


@pytest.mark.parametrize("bad, message", [
    (dict(optimizer="rmsprop"), "training.optimizer must be one of"),
    (dict(rate=1.0), r"pruning.rate must be in \[0, 1\)"),
    (dict(scope="global"), r"per-layer rates \(pruning.output_rate, pruning.layer_rates\) "
                           r"need scope='layer'"),
    (dict(rewind_iteration=5), "pruning.rewind_iteration=5 needs pruning.rewind='iteration'"),
    (dict(rewind="iteration", rewind_iteration=5000),
     r"pruning.rewind_iteration \(5000\) must be < training.iterations"),
    (dict(controls=("shuffle",)), "pruning.controls: unknown branch 'shuffle'; known: init, "
                                  "reinit, random"),
    (dict(eval_every=0), "training.eval_every must be >= 1"),
    (dict(n_embd=10, n_head=4), r"model.n_embd \(10\) must be a multiple of model.n_head"),
    (dict(test_size=10, dataset="mnist"), "data.test_size applies to mnist5k only"),
    (dict(keep_points=(5000,)), r"run.keep_points must be <= training.iterations \(1200\)"),
    (dict(criterion="snap"), "pruning.criterion: unknown criterion 'snap'; known: magnitude, "
                             "random"),
])
def test_config_errors_name_the_field(bad, message):
    with pytest.raises(ValueError, match="^IMPConfig: " + message):
        IMPConfig.of(**bad)


def test_config_json_round_trip_and_presets():
    from lth_fast.imp import PRESETS
    for name in PRESETS:
        cfg = preset(name)
        assert IMPConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        preset("nope")
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\]"):
        IMPConfig.from_dict({"colour": 1})


def test_layer_rates_must_name_pruned_tensors(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"layer_rates names \['fc9.weight'\]"):
        run_imp(tiny(data_dir, layer_rates={"fc9.weight": 0.5}), tmp_path / "r",
                progress=False, log=lambda s: None)


def _cli(data_dir, run_dir, levels=3):
    return [sys.executable, "-m", "lth_fast", "imp", "--dataset", "mnist", "--data-dir",
            data_dir, "--val-size", "100", "--batch-size", "20", "--iterations", "150",
            "--eval-every", "50", "--levels", str(levels), "--run-dir", str(run_dir),
            "--no-progress"]


def test_resume_after_sigkill_matches_uninterrupted(data_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(_cli(data_dir, whole), check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    killed = tmp_path / "killed"
    kill_after_level(_cli(data_dir, killed), killed, 1, env, ROOT)  # within level 2
    assert not (killed / "level_03" / "metrics.json").exists()
    out = subprocess.run(_cli(data_dir, killed), check=True, env=env, cwd=ROOT,
                         capture_output=True, text=True).stdout
    assert "level" in out.splitlines()[0] or "resuming" in out
    load = lambda d: [json.loads((d / f"level_{i:02d}" / "metrics.json").read_text())  # noqa
                      for i in range(4)]
    assert without_times(load(killed)) == without_times(load(whole))
    for i in range(4):
        for f in ("checkpoint.safetensors", "masks.safetensors"):
            a, b = load_file(killed / f"level_{i:02d}" / f), load_file(whole / f"level_{i:02d}" / f)
            assert all(torch.equal(a[k], b[k]) for k in a), f"level {i} {f}"
    assert (killed / "summary.csv").read_text() == (whole / "summary.csv").read_text()


def test_cli_help_and_table(data_dir, tmp_path, capsys):
    from lth_fast.cli import main
    with pytest.raises(SystemExit) as e:
        main(["imp", "--help"])
    assert e.value.code == 0
    assert "--rewind-iteration" in capsys.readouterr().out
    assert main(["imp", "--dataset", "mnist", "--data-dir", data_dir, "--val-size", "100",
                 "--batch-size", "20", "--iterations", "20", "--eval-every", "10",
                 "--levels", "1", "--controls", "reinit", "--run-dir", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "reinit acc@es" in out and "random acc@es" not in out
    assert "% of" in out and "IMP" in out
    assert main(["imp", "--rate", "1.5", "--run-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "rate must be in" in err and err.count("\n") == 1


def test_report_table_and_time_share():
    levels = [{"level": 0, "remaining": 100.0, "seconds": {"prune": 0, "rewind": 0, "train": 40,
                                                           "level": 50},
               "branches": {"ticket": {"test_accuracy_at_early_stop": 0.9,
                                       "early_stop_iteration": 100, "final_test_accuracy": 0.91}}},
              {"level": 1, "remaining": 80.0, "seconds": {"prune": 1, "rewind": 2, "train": 40,
                                                          "level": 50},
               "branches": {"ticket": {"test_accuracy_at_early_stop": 0.92,
                                       "early_stop_iteration": 80, "final_test_accuracy": 0.93},
                            "reinit": {"test_accuracy_at_early_stop": 0.85,
                                       "early_stop_iteration": 120, "final_test_accuracy": 0.86}}}]
    rows = summary_rows(levels)
    table = format_table(rows).splitlines()
    assert table[0].split() == ["level", "remaining", "ticket", "acc@es", "ticket", "es-iter",
                                "ticket", "final", "reinit", "acc@es", "reinit", "es-iter",
                                "reinit", "final"]
    assert table[1].split() == ["0", "100.0%", "90.0", "100", "91.0", "-", "-", "-"]
    assert table[2].split() == ["1", "80.0%", "92.0", "80", "93.0", "85.0", "120", "86.0"]
    assert time_share(levels)["share"] == pytest.approx(3 / 100)


@pytest.mark.parametrize("name", sorted(__import__("lth_fast.imp", fromlist=["PRESETS"]).PRESETS))
def test_every_preset_builds_its_model_and_rates(name):
    from lth_fast.imp.build import level_rates, new_pruner
    from lth_fast.models import build_model, output_layer

    cfg = preset(name)
    m, p = cfg.model, cfg.pruning
    if m.name == "gpt":
        from lth_fast.models import GPT, GPTConfig
        model = GPT(GPTConfig(vocab_size=50, block_size=m.block_size, n_layer=m.n_layer,
                              n_head=m.n_head, n_embd=m.n_embd))
    else:
        model = build_model(m.name)
    pruner = new_pruner(model, cfg)
    rates = level_rates(cfg, model, pruner)
    assert not set(p.ignore) & set(pruner.names)
    if m.name == "gpt":  # the blocks' four matrices each, nothing else
        assert rates is None and len(pruner.names) == 4 * m.n_layer
        assert all(n.startswith("blocks.") for n in pruner.names)
    elif p.scope == "layer":
        assert rates[output_layer(model)] == p.output_rate
        assert all(rates[n] == r for n, r in p.layer_rates.items())
    else:
        assert rates is None and output_layer(model) in p.ignore


def test_resnet20_on_cifar_files_sgd_late_rewind(tmp_path):
    """The deep preset end to end on tiny CIFAR-10 batches: MaskedSGD, augmentation, global
    pruning with the classifier left dense, rewinding to iteration k (BatchNorm buffers too)."""
    from tests.helpers.data_files import cifar_files

    cifar_files(str(tmp_path / "cifar"), protocol=2, n_per_batch=8, n_test=10)
    cfg = preset("resnet20_cifar10", data_dir=str(tmp_path / "cifar"), val_size=8, batch_size=8,
                 iterations=6, eval_every=3, levels=1, milestones=(4,), rewind_iteration=2)
    levels = run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    names, masks = read_masks(tmp_path / "run" / "level_01" / "masks.safetensors")
    assert "fc.weight" not in names and len(names) == 21
    total = sum(m.numel() for m in masks.values())
    assert total - sum(int(m.sum()) for m in masks.values()) == round(0.2 * total)
    state = load_file(tmp_path / "run" / "level_01" / "checkpoint.safetensors")
    assert all(not state[n][~masks[n]].any() for n in names)
    assert [e[0] for e in levels[1]["branches"]["ticket"]["evals"]] == [2, 5, 6]
