"""`lth-fast imp --tensorboard DIR`: each level's scalars (level, density, every branch's
numbers at early stop, each pruned tensor's density) in TensorBoard event files, at the
level's density in basis points; without the tensorboard package, a one-line error that names
the extra, before any training."""
from __future__ import annotations

import builtins

import pytest

from lth_fast.cli import main
from lth_fast.tracking import LevelLog, density_step

from tests.helpers.imp import learnable_mnist


class Recorder:
    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


def test_level_log_writes_at_the_density():
    rec = Recorder()
    LevelLog(rec).level(2, 0.64, {"ticket": {"early_stop_iteration": 300, "acc": 0.97,
                                             "missing": float("nan"), "flag": True}},
                        {"fc1.weight": 0.6})
    assert rec.scalars == [("imp/level", 2, 6400), ("imp/density", 0.64, 6400),
                           ("imp/ticket/early_stop_iteration", 300, 6400),
                           ("imp/ticket/acc", 0.97, 6400), ("imp_density/fc1.weight", 0.6, 6400)]
    assert density_step(1.0) == 10000 and density_step(0.2097152) == 2097


def _imp_args(data_dir, run_dir):
    return ["imp", "--dataset", "mnist", "--data-dir", data_dir, "--val-size", "100",
            "--batch-size", "20", "--iterations", "20", "--eval-every", "10", "--levels", "2",
            "--controls", "reinit", "--run-dir", str(run_dir), "--no-progress"]


def test_imp_writes_every_level_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    data_dir = learnable_mnist(str(tmp_path / "mnist"))
    tb = tmp_path / "tb"
    assert main(_imp_args(data_dir, tmp_path / "r") + ["--tensorboard", str(tb)]) == 0
    events = EventAccumulator(str(tb))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"imp/level", "imp/density", "imp/ticket/test_accuracy_at_early_stop",
            "imp/ticket/early_stop_iteration", "imp/reinit/test_accuracy_at_early_stop",
            "imp_density/fc1.weight", "imp_density/fc3.weight"} <= tags
    levels = events.Scalars("imp/level")
    assert [e.value for e in levels] == [0, 1, 2]
    steps = [e.step for e in levels]
    assert steps[0] == 10000 and steps[0] > steps[1] > steps[2] > 0
    density = {e.step: e.value for e in events.Scalars("imp/density")}
    assert all(abs(density[s] * 10000 - s) <= 0.5 for s in steps)
    out_layer = [e.value for e in events.Scalars("imp_density/fc3.weight")]
    assert out_layer[0] == 1.0 and out_layer[1] == pytest.approx(0.9, abs=0.01)


def test_without_tensorboard_the_error_names_the_extra(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    data_dir = learnable_mnist(str(tmp_path / "mnist"))
    run_dir = tmp_path / "r"
    assert main(_imp_args(data_dir, run_dir) + ["--tensorboard", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'lth_fast[tensorboard]'" in err and err.count("\n") == 1
    assert not (run_dir / "level_00").exists()   # refused before any training
