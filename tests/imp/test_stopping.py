"""IMP that stops by itself (--stop-below), the sparsest matching ticket under both definitions
(lth_fast.imp.matching), seeds run in lockstep, and `lth-fast ticket`."""
from __future__ import annotations

import math
import os

import pytest

from lth_fast.cli import main
from lth_fast.imp import run_imp
from lth_fast.imp.lockstep import run_lockstep
from lth_fast.imp.matching import (AT_DENSE, WITHIN, describe, first_below, level_results,
                                   sparsest_matching)
from lth_fast.imp.report import summary_rows

from tests.helpers.imp import learnable_mnist, tiny


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return learnable_mnist(str(tmp_path_factory.mktemp("mnist")))


def rows(accs, remaining=None):
    remaining = remaining or [100 * 0.8 ** i for i in range(len(accs))]
    return [{"level": i, "remaining": r, "ticket_test_accuracy_at_early_stop": a}
            for i, (a, r) in enumerate(zip(accs, remaining))]


def test_matching_definitions_on_one_seed():
    res = level_results([rows([0.950, 0.960, 0.945, 0.938, 0.951, 0.90])], test_size=1000)
    # within 1 point: 0.945 and 0.951 match, 0.938 does not; the sparsest is level 4
    assert sparsest_matching(res, WITHIN, 1.0).level == 4
    assert sparsest_matching(res, AT_DENSE, 1.0).level == 4
    assert sparsest_matching(res, WITHIN, 0.1).level == 4
    assert first_below(res, 1.0).level == 3
    assert first_below(res, 10.0) is None
    assert sparsest_matching(level_results([rows([0.95, 0.90])]), AT_DENSE, 1) is None
    text = "\n".join(describe(res, 1.0))
    # one seed: its accuracy carries the test set's sampling error, named as such
    err = 100 * math.sqrt(0.951 * 0.049 / 1000)
    assert f"± {err:.2f} (1 seed: the test set's sampling error only" in text
    assert "level 4" in text and "within 1 point of dense" in text
    no_size = "\n".join(describe(level_results([rows([0.95, 0.96])]), 1.0))
    assert "1 seed: no spread measured" in no_size


def test_matching_uses_the_mean_over_seeds_with_its_spread():
    a = rows([0.95, 0.95, 0.94])
    b = rows([0.97, 0.93, 0.95])
    res = level_results([a, b])
    assert res[1].mean == pytest.approx(0.94) and res[1].std == pytest.approx(
        0.02 / math.sqrt(2))
    assert res[0].seeds == 2
    # dense mean 0.96; level 1 mean 0.94 is 2 points below, level 2 mean 0.945 1.5 below
    assert first_below(res, 1.0).level == 1
    assert sparsest_matching(res, WITHIN, 2.0).level == 2
    assert "std over 2 seeds" in "\n".join(describe(res, 2.0))


def test_language_model_losses_match_by_percent_of_the_dense_loss():
    r = [{"level": i, "remaining": 100 * 0.8 ** i, "ticket_test_loss_at_early_stop": v}
         for i, v in enumerate([1.50, 1.51, 1.52, 1.49])]
    res = level_results([r])
    assert sparsest_matching(res, WITHIN, 1.0).level == 3  # 1.52 <= 1.515? no; 1.49 yes
    assert sparsest_matching(res, WITHIN, 1.5).level == 3
    assert first_below(res, 1.0).level == 2
    assert sparsest_matching(res, AT_DENSE, 1.0).level == 3
    assert "no spread measured" in "\n".join(describe(res, 1.0))


def test_stop_below_ends_the_run_by_itself_and_a_rerun_adds_nothing(data_dir, tmp_path):
    # rate 0.99: level 2 keeps 0.01% of the weights, which cannot learn the digits
    cfg = tiny(data_dir, levels=5, rate=0.99, output_rate=None, controls=())
    out = tmp_path / "r"
    levels = run_imp(cfg, out, progress=False, log=lambda *_: None, stop_below=1.0)
    res = level_results([summary_rows(levels)])
    low = first_below(res, 1.0)
    assert low is not None and low.level == levels[-1]["level"] < 5
    again = run_imp(cfg, out, progress=False, log=lambda *_: None, stop_below=1.0)
    assert len(again) == len(levels)
    # without the rule the same run directory goes on to the configured levels
    full = run_imp(cfg, out, progress=False, log=lambda *_: None)
    assert [m["level"] for m in full] == list(range(6))


def test_seeds_in_lockstep_stop_on_the_mean(data_dir, tmp_path):
    runs = [(tiny(data_dir, levels=4, rate=0.99, output_rate=None, controls=(), seed=s),
             str(tmp_path / f"r-s{s}")) for s in (0, 1)]
    metrics = run_lockstep(runs, stop_below=1.0, progress=False, log=lambda *_: None)
    assert len(metrics[0]) == len(metrics[1]) < 5
    res = level_results([summary_rows(m) for m in metrics])
    assert first_below(res, 1.0).level == metrics[0][-1]["level"]
    assert res[0].std is not None and res[0].seeds == 2


def test_cli_seeds_stop_below_and_ticket(data_dir, tmp_path, capsys):
    base = ["imp", "--dataset", "mnist", "--data-dir", data_dir, "--val-size", "100",
            "--batch-size", "20", "--iterations", "30", "--eval-every", "10", "--levels", "3",
            "--rate", "0.5", "--output-rate", "none", "--controls", "none", "--no-progress"]
    prefix = str(tmp_path / "exp")
    assert main(base + ["--seeds", "2", "--run-dir", prefix, "--stop-below", "50"]) == 0
    out = capsys.readouterr().out
    assert "std over 2 seeds" in out and "sparsest matching ticket (within 50 points" in out
    assert "--stop-below 50: every level run matched" in out
    dirs = [f"{prefix}-s0", f"{prefix}-s1"]
    assert all(os.path.exists(os.path.join(d, "level_03", "masks.safetensors")) for d in dirs)
    assert main(["ticket", *dirs, "--delta", "50"]) == 0
    out = capsys.readouterr().out
    assert "sparsest matching ticket (within 50 points of dense): level 3" in out
    assert "level_03/masks.safetensors" in out and "lth-fast export" in out
    assert main(["ticket", dirs[0]]) == 0
    assert "1 seed" in capsys.readouterr().out
    assert main(["ticket", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "is not an lth-fast imp run directory (it has no config.json)" in err
    assert err.count("\n") == 1
    assert main(base + ["--seeds", "0"]) == 2
    assert main(base + ["--against", str(tmp_path / "nothing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_imp_with_nm_scope_keeps_n_of_every_m_and_so_does_its_random_control(data_dir, tmp_path):
    from lth_fast.pruning import ticket
    cfg = tiny(data_dir, scope="nm", nm_n=2, nm_m=4, levels=1, controls=("random", "reinit"))
    levels = run_imp(cfg, tmp_path / "nm", progress=False, log=lambda *_: None)
    assert levels[1]["remaining"] == pytest.approx(50.0)
    masks = ticket.load_masks(tmp_path / "nm" / "level_01" / "masks.safetensors").masks
    for name, m in masks.items():
        assert (m.reshape(m.shape[0], -1, 4).sum(-1) == 2).all(), name
    assert set(levels[1]["branches"]) == {"ticket", "random", "reinit"}
    with pytest.raises(ValueError, match="pruning.scope 'nm' reaches its 2:4 pattern in one "
                                         "level"):
        tiny(data_dir, scope="nm", levels=2)
    with pytest.raises(ValueError, match=r"pruning.nm_n:pruning.nm_m \(1:4\) applies to "
                                         r"pruning.scope='nm'"):
        tiny(data_dir, nm_n=1)
    with pytest.raises(SystemExit) as e:
        main(["imp", "--scope", "nm", "--nm", "2:x", "--levels", "1"])
    assert e.value.code == 2
