"""Run directories that survive mistakes (lth_fast.imp.run_dir): every file a restart reads is
checked, and a bad one is named with what to do while nothing in the directory changes; a level
computed from files that have changed since is trained again; a smaller --levels is refused;
--overwrite starts afresh once the experiment has started; the CLI says each error in one line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from lth_fast import atomic
from lth_fast.cli import main
from lth_fast.imp import run_imp
from lth_fast.imp.run_dir import RunFileError, checksum

from tests.helpers import ROOT
from tests.helpers.imp import learnable_mnist, tiny, without_times


QUIET = dict(progress=False, log=lambda s: None)
SETTINGS = dict(levels=2, iterations=20, controls=())


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return learnable_mnist(str(tmp_path_factory.mktemp("mnist")))


@pytest.fixture(scope="module")
def finished(data_dir, tmp_path_factory):
    """A finished run of levels 0..2, and its metrics."""
    run = tmp_path_factory.mktemp("finished") / "run"
    return run, run_imp(tiny(data_dir, **SETTINGS), run, **QUIET)


@pytest.fixture
def run(finished, tmp_path):
    """A copy of the finished run to damage."""
    return shutil.copytree(finished[0], tmp_path / "run")


def contents(run):
    return {os.path.relpath(os.path.join(d, f), run): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(run) for f in files}


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def level_metrics(run, level):
    return json.loads((run / f"level_{level:02d}" / "metrics.json").read_text())


TRUNCATED = r"is truncated or not a safetensors file \(.*\): delete .*"
CORRUPT = {
    "config.json": r"config\.json is truncated or not JSON \(.*\): restore it, or start afresh "
                   r"with --overwrite",
    "level_02/metrics.json": r"level_02/metrics\.json is truncated or not JSON .*: delete "
                             r".*level_02/ to train level 2 again \(the levels after it are "
                             r"retrained too\)",
    "level_02/checkpoint.safetensors": r"level_02/checkpoint\.safetensors " + TRUNCATED +
                                       r"level_02/ to train level 2 again",
    "level_02/masks.safetensors": r"level_02/masks\.safetensors " + TRUNCATED + "level_02/",
    "level_00/masks.safetensors": r"level_00/masks\.safetensors " + TRUNCATED + "level_00/",
    "level_01/checkpoint.safetensors": r"level_01/checkpoint\.safetensors " + TRUNCATED +
                                       "level_01/",
    "rewind_point.safetensors": r"rewind_point\.safetensors " + TRUNCATED + "level_00/",
}


@pytest.mark.parametrize("rel", list(CORRUPT))
def test_a_truncated_file_is_named_with_what_to_do_and_nothing_changes(data_dir, run, rel):
    truncate(run / rel)
    before = contents(run)
    with pytest.raises(RunFileError, match=CORRUPT[rel]):
        run_imp(tiny(data_dir, **SETTINGS), run, **QUIET)
    assert contents(run) == before


@pytest.mark.parametrize("damage, message", [
    (lambda run: os.remove(run / "level_01" / "checkpoint.safetensors"),
     r"level_01/checkpoint\.safetensors is missing: delete .*level_01/"),
    (lambda run: (run / "level_01" / "metrics.json").write_text('{"level": 5}'),
     r"level_01/metrics\.json is not level 1's metrics: delete .*level_01/"),
    (lambda run: (run / "level_01" / "metrics.json").write_text("[1, 2]"),
     r"level_01/metrics\.json holds a list, not an object"),
    (lambda run: (run / "config.json").write_text('{"colour": 1}'),
     r"config\.json is not an IMP config \(IMPConfig: unknown fields \['colour'\]\)"),
    (lambda run: shutil.copy(run / "level_01" / "masks.safetensors",
                             run / "level_00" / "masks.safetensors"),
     r"level_00/masks\.safetensors does not match the checksum in level_00/metrics\.json "
     r"\(changed since\): delete .*level_00/ to train level 0 again"),
], ids=["missing", "other-level", "not-an-object", "not-a-config", "replaced"])
def test_other_bad_files_are_named(data_dir, run, damage, message):
    damage(run)
    before = contents(run)
    with pytest.raises(RunFileError, match=message):
        run_imp(tiny(data_dir, **SETTINGS), run, **QUIET)
    assert contents(run) == before


def test_doing_what_the_error_says_ends_as_the_uninterrupted_run(finished, data_dir, run):
    truncate(run / "level_01" / "masks.safetensors")
    with pytest.raises(RunFileError, match="delete .*level_01/"):
        run_imp(tiny(data_dir, **SETTINGS), run, **QUIET)
    shutil.rmtree(run / "level_01")
    again = run_imp(tiny(data_dir, **SETTINGS), run, **QUIET)
    assert without_times(again) == without_times(finished[1])
    for rel in ("level_01/masks.safetensors", "level_02/checkpoint.safetensors"):
        a, b = load_file(run / rel), load_file(finished[0] / rel)
        assert all(torch.equal(a[k], b[k]) for k in a), rel


def test_a_level_computed_from_files_that_changed_is_trained_again(data_dir, run):
    """level_01 retrained to other bytes (simulated: a weight changed and its checksum
    updated): level_02 was pruned from the old weights, so it is trained again."""
    ckpt = run / "level_01" / "checkpoint.safetensors"
    state = load_file(ckpt)
    state["fc1.weight"][0, 0] += 1.0
    atomic.save_tensors(ckpt, state)
    m1 = level_metrics(run, 1)
    m1["files"]["level_01/checkpoint.safetensors"] = checksum(ckpt)
    atomic.write_json(run / "level_01" / "metrics.json", m1)
    old = level_metrics(run, 2)["files"]["level_01/checkpoint.safetensors"]
    said = []
    run_imp(tiny(data_dir, **SETTINGS), run, progress=False, log=said.append)
    assert any("level_02/ was computed from another level_01/checkpoint.safetensors; training "
               "level 2 again" in s for s in said), said
    new = level_metrics(run, 2)["files"]["level_01/checkpoint.safetensors"]
    assert new == m1["files"]["level_01/checkpoint.safetensors"] != old


def test_checksums_cover_what_each_level_wrote_and_read(run):
    files = [set(level_metrics(run, lv)["files"]) for lv in range(3)]
    assert files[0] == {"rewind_point.safetensors", "level_00/masks.safetensors",
                        "level_00/checkpoint.safetensors"}
    assert files[2] == {"rewind_point.safetensors", "level_01/masks.safetensors",
                        "level_01/checkpoint.safetensors", "level_02/masks.safetensors",
                        "level_02/checkpoint.safetensors"}
    for lv in range(3):
        for rel, want in level_metrics(run, lv)["files"].items():
            assert checksum(run / rel) == want, rel


def test_a_smaller_levels_is_refused_and_changes_nothing(data_dir, run):
    before = contents(run)
    with pytest.raises(ValueError, match=r"has levels 0\.\.2 finished; levels=1 would drop the "
                                         r"later ones: give --levels 2 or more, or --overwrite"):
        run_imp(tiny(data_dir, **{**SETTINGS, "levels": 1}), run, **QUIET)
    assert contents(run) == before
    # a level that never finished (its save cut short) is not dropped: levels=1 then fits,
    # and every derived file
    os.remove(run / "level_02" / "metrics.json")
    os.remove(run / "level_02" / "checkpoint.safetensors")
    got = run_imp(tiny(data_dir, **{**SETTINGS, "levels": 1}), run, **QUIET)
    assert [m["level"] for m in got] == [0, 1]
    assert json.loads((run / "config.json").read_text())["pruning"]["levels"] == 1
    assert (run / "summary.csv").read_text().count("\n") == 3  # header + 2 levels


def test_overwrite_starts_afresh_only_once_the_experiment_starts(data_dir, run):
    (run / "notes.txt").write_text("mine")
    before = contents(run)
    with pytest.raises(FileNotFoundError, match="MNIST file"):
        run_imp(tiny(str(run / "nowhere"), levels=0, lr=0.01), run,
                overwrite=True, **QUIET)
    assert contents(run) == before
    got = run_imp(tiny(data_dir, levels=0, lr=0.01, iterations=20), run, overwrite=True,
                  **QUIET)
    assert [m["level"] for m in got] == [0]
    assert json.loads((run / "config.json").read_text())["training"]["lr"] == 0.01
    assert not (run / "level_01").exists() and not (run / "level_02").exists()
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "summary.csv").read_text().count("\n") == 2


# -- the CLI ------------------------------------------------------------------------------------
def argv(data_dir, run_dir, *extra):
    return ["imp", "--dataset", "mnist", "--data-dir", str(data_dir), "--val-size", "100",
            "--batch-size", "20", "--iterations", "20", "--eval-every", "10", "--levels", "2",
            "--controls", "none", "--run-dir", str(run_dir), "--no-progress", *extra]


def one_line_error(capsys, status, code):
    err = capsys.readouterr().err
    assert status == code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("extra, code, says", [
    (["--levels", "x"], 2, "argument --levels: invalid int value: 'x'"),
    (["--rate", "1.5"], 2, "rate must be in [0, 1), got 1.5"),
    (["--device", "gpu"], 2, "device must be cpu, cuda or cuda:N"),
    (["--device", "cuda:99"], 1, "device 'cuda:99'"),
    (["--data-dir", "/nonexistent/mnist"], 1, "MNIST file train-images-idx3-ubyte[.gz] not "
                                              "found; looked for /nonexistent/mnist/"),
    (["--lr", "0.5"], 1, "holds a different experiment (training.lr: 0.0012 != 0.5)"),
    (["--levels", "1"], 1, "has levels 0..2 finished"),
], ids=["bad-flag", "config", "device-name", "device", "data", "other-experiment", "levels"])
def test_cli_errors_are_one_line(data_dir, run, tmp_path, capsys, extra, code, says):
    where = run if "experiment" in says or "finished" in says else tmp_path / "new"
    try:
        status = main(argv(data_dir, where, *extra))
    except SystemExit as e:  # argparse's own usage errors
        status = e.code
    assert says in one_line_error(capsys, status, code)


def test_cli_file_error_is_one_line_and_debug_shows_the_traceback(data_dir, run, capsys):
    truncate(run / "level_00" / "checkpoint.safetensors")
    err = one_line_error(capsys, main(argv(data_dir, run)), 1)
    assert err.startswith("lth-fast imp: ") and "level_00/checkpoint.safetensors" in err
    with pytest.raises(RunFileError):
        main(argv(data_dir, run, "--debug"))


def test_cli_process_exits_with_one_line(data_dir, tmp_path):
    """The installed entry point (python -m lth_fast) as a shell sees it."""
    out = subprocess.run([sys.executable, "-m", "lth_fast", *argv(tmp_path / "none", tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("lth-fast imp: MNIST file")
