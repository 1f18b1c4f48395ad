"""Nothing silently wrong at the command line: a flag that does not apply is refused in one line
naming it, before the data loads; runs that are not one experiment are not combined; a path in
the way is named before anything trains; a language model's summary reads as a loss."""
from __future__ import annotations

import os
import shutil

import pytest

from lth_fast.cli import main
from lth_fast.imp import preset, run_imp
from lth_fast.imp.analyses.seeds import combine, format_markdown
from lth_fast.imp.analyses.ticket import ticket_lines
from lth_fast.imp.matching import describe, level_results

from tests.helpers.imp import learnable_mnist, tiny

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPT_FIXTURE = os.path.join(ROOT, "tests", "fixtures", "behaviour", "gpt")


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return str(learnable_mnist(tmp_path_factory.mktemp("mnist")))


@pytest.fixture(scope="module")
def runs(mnist, tmp_path_factory):
    """Two seeds of one tiny experiment, and a third run of another (more iterations)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, kw in (("s0", {}), ("s1", dict(seed=1)), ("other", dict(iterations=40))):
        out[name] = str(root / name)
        run_imp(tiny(mnist, **{"levels": 1, "iterations": 20, "eval_every": 10, **kw}),
                out[name], progress=False, log=lambda s: None)
    return out


def _refused(capsys, argv, message):
    """`lth-fast imp ...` exits 2 with one line holding `message`, and writes no run."""
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.parametrize("flags, message", [
    (["--nm", "2:4", "--levels", "1"], "--nm applies to --scope nm, not --scope layer"),
    (["--nm", "1:4"], "--nm N:M (1:4) applies to --scope='nm'"),
    (["--scope", "nm", "--nm", "4:4", "--levels", "1"], "4:4 keeps every weight"),
    (["--scope", "nm", "--levels", "1", "--rate", "0.3"], "--rate applies to the ranking"),
    (["--scope", "nm", "--levels", "1", "--output-rate", "0.3"], "--output-rate applies to"),
    (["--augment"], "--augment (random crop + flip) applies to cifar10, not 'mnist5k'"),
    (["--n-layer", "3"], "--n-layer shapes the gpt model, not 'lenet_300_100'"),
    (["--momentum", "0.9"], "--momentum applies to --optimizer='sgd', not 'adam'"),
    (["--optimizer", "sgd", "--beta2", "0.9"], "--beta2 applies to --optimizer 'adam' and"),
    (["--min-lr", "0.001"], "--min-lr is where --schedule='cosine' ends"),
    (["--early-bird-window", "3"], "--early-bird-window sizes the --early-bird monitor"),
    (["--data-dir", "/tmp"], "--data-dir applies to the data sets read from files"),
    (["--scope", "nm", "--stop-below", "1"], "--stop-below stops IMP between levels; --scope nm"),
    (["--dataset", "text", "--text-file", "/etc/hostname"],
     "--dataset 'text' is text: it trains --model 'gpt', not 'lenet_300_100'"),
    # every stream of a seed must fit torch.Generator's 64 bits (lth_fast.imp.streams)
    (["--seed", "18000000"], "--seed must be in [0, 18,000,000), got 18000000"),
    (["--data-seed", "20000000"], "--data-seed must be in [0, 18,000,000)"),
])
def test_flags_that_do_not_apply_are_refused_before_the_data_loads(capsys, tmp_path, flags,
                                                                   message):
    run = tmp_path / "run"
    _refused(capsys, ["imp", "--run-dir", str(run), "--no-progress", *flags], message)
    assert not run.exists()


def test_ignore_names_its_flag(capsys, mnist, tmp_path):
    _refused(capsys, ["imp", "--dataset", "mnist", "--data-dir", mnist, "--val-size", "100",
                      "--run-dir", str(tmp_path / "run"), "--no-progress",
                      "--ignore", "fc9.weight"],
             "--ignore names 'fc9.weight', which is not a weight lenet_300_100 prunes")


def test_paths_in_the_way_are_named_before_training(capsys, mnist, tmp_path):
    base = ["imp", "--dataset", "mnist", "--data-dir", mnist, "--val-size", "100",
            "--iterations", "10", "--eval-every", "5", "--levels", "1", "--no-progress"]
    (tmp_path / "afile").write_text("x")
    assert main([*base, "--run-dir", str(tmp_path / "afile")]) == 1
    err = capsys.readouterr().err
    assert f"run directory {tmp_path / 'afile'} is a file" in err and err.count("\n") == 1
    assert main([*base, "--run-dir", str(tmp_path / "r"), "--tensorboard",
                 str(tmp_path / "afile")]) == 1
    err = capsys.readouterr().err
    assert "tensorboard directory" in err and "is a file" in err
    assert not (tmp_path / "r").exists()
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "level_00").write_text("x")
    assert main([*base, "--run-dir", str(tmp_path / "r2")]) == 1
    err = capsys.readouterr().err
    assert "level_00 is a file where the run keeps a folder" in err
    assert sorted(os.listdir(tmp_path / "r2")) == ["level_00"]   # nothing written


def test_seeds_of_one_experiment_only(runs, tmp_path):
    rows = combine([runs["s0"], runs["s1"]])
    assert rows[1]["ticket_test_accuracy_at_early_stop"][2] == 2
    with pytest.raises(ValueError, match="is given twice"):
        combine([runs["s0"], runs["s0"]])
    with pytest.raises(ValueError, match="is given twice"):
        ticket_lines([runs["s0"], runs["s0"] + "/"], 1.0)
    with pytest.raises(ValueError, match=r"not seeds of one experiment \(training.iterations: "
                                         r"20 != 40\)"):
        ticket_lines([runs["s0"], runs["other"]], 1.0)
    copy = tmp_path / "copy"
    shutil.copytree(runs["s0"], copy)
    with pytest.raises(ValueError, match=r"have the same seed \(run.seed 0"):
        combine([runs["s0"], str(copy)])
    with pytest.raises(ValueError, match="not seeds of one experiment .data.dataset: "
                                         "'mnist' != 'pydoc'"):
        ticket_lines([runs["s0"], GPT_FIXTURE], 1.0)


def test_a_value_of_fewer_runs_shows_its_n_not_a_zero_spread():
    one = {"level": (1.0, None, 1), "remaining": (80.0, None, 1),
           "ticket_test_accuracy_at_early_stop": (0.9, 0.01, 2),
           "reinit_test_accuracy_at_early_stop": (0.8, None, 1)}
    table = format_markdown([one])
    assert "90.0 ± 1.0" in table and "80.0 (n=1)" in table and "± 0.0" not in table


def test_against_is_checked_before_training(capsys, runs, mnist, tmp_path):
    run = tmp_path / "run"
    base = ["imp", "--dataset", "mnist", "--data-dir", mnist, "--val-size", "100",
            "--batch-size", "20", "--eval-every", "10", "--levels", "1", "--no-progress",
            "--run-dir", str(run)]
    _refused(capsys, [*base, "--iterations", "30", "--against", runs["s0"]],
             "is another experiment (training.iterations: 20 != 30)")
    _refused(capsys, [*base, "--iterations", "20", "--against", GPT_FIXTURE],
             "is another experiment (data.dataset: 'pydoc' != 'mnist')")
    assert not run.exists()


def test_a_language_model_summary_reads_as_a_loss():
    rows = [{"level": 0, "remaining": 100.0, "ticket_test_loss_at_early_stop": 2.0},
            {"level": 1, "remaining": 80.0, "ticket_test_loss_at_early_stop": 1.99}]
    lines = describe(level_results([rows]), 1.0)
    assert "sparsest matching ticket (loss within 1% of dense): level 1" in lines[1]
    assert "sparsest matching ticket (loss at or below dense): level 1" in lines[2]
    assert not any("of dense of dense" in line or "above dense" in line for line in lines)


def test_a_config_error_under_torchrun_is_printed_by_rank_0_only(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert main(["imp", "--momentum", "0.9", "--no-progress"]) == 2
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert main(["imp", "--momentum", "0.9", "--no-progress"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_an_unknown_flag_points_to_its_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", "somewhere", "--level", "1", "-o", "x"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "lth-fast export: error: unrecognized arguments: -o x (see lth-fast export --help)" \
        in err


def test_a_default_size_says_where_it_came_from(mnist, tmp_path):
    cfg = preset("lenet_mnist5k", dataset="mnist", data_dir=mnist, levels=0)
    with pytest.raises(ValueError, match=r"cannot hold out val_size 5000 of 500 examples.*"
                                         r"\(val_size: mnist's default; set data.val_size "
                                         r"\(--val-size\)\)"):
        run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)


def test_output_rate_none_is_a_value_not_an_absence(monkeypatch):
    """--output-rate none sets the classifier to the common rate (it was taken for "not given"
    and the preset's 0.1 kept), and is refused with --scope nm like any --output-rate."""
    import lth_fast.imp.driver as driver
    got = []
    monkeypatch.setattr(driver, "run_imp", lambda cfg, *a, **k: got.append(cfg) or [])
    monkeypatch.setattr("lth_fast.imp.cli.print_summary", lambda *a, **k: None)
    assert main(["imp", "--output-rate", "none", "--no-progress"]) == 0
    assert got[0].pruning.output_rate is None
    assert main(["imp", "--scope", "nm", "--levels", "1", "--output-rate", "none"]) == 2
