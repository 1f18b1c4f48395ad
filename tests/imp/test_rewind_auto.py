"""`lth-fast imp --rewind auto`: the probe before level 1 draws level 1's masks, keeps its
candidates' points, picks the smallest stable k, and the run is then the run rewound to that k
bit for bit; the probe is recorded in level 1's metrics and printed, a resumed run reuses it,
and the flags that do not apply are refused in one line."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from lth_fast.cli import main
from lth_fast.imp import rewind_probe, run_imp
from lth_fast.imp.instability.barrier import summary_rows
from lth_fast.pruning import ticket

from tests.helpers.imp import learnable_mnist, tiny, without_times

QUIET = dict(progress=False, log=lambda s: None)
BASE = dict(levels=2, iterations=12, eval_every=4, controls=())


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return str(learnable_mnist(tmp_path_factory.mktemp("mnist")))


@pytest.fixture(scope="module")
def auto(mnist, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("auto") / "run")
    cfg = tiny(mnist, **BASE, rewind="auto", rewind_candidates=(8, 0, 4))
    return cfg, d, run_imp(cfg, d, **QUIET)


def test_auto_is_the_run_rewound_to_the_chosen_k(mnist, auto, tmp_path):
    cfg, d, levels = auto
    probe = levels[1]["rewind_probe"]
    assert probe["candidates"] == [8, 0, 4] and levels[0]["points"] == [0, 4, 8]
    assert [r["k"] for r in probe["table"]] == [8, 0, 4]
    assert probe["chosen"] == rewind_probe.choose(probe["table"])[0]
    assert probe["iterations"] == 2 * (4 + 12 + 8)
    assert "rewind_probe" not in levels[2]
    # the probe's masks are level 1's
    fixed = run_imp(tiny(mnist, **BASE, rewind="iteration", rewind_iteration=probe["chosen"]),
                    tmp_path / "fixed", **QUIET)
    for a, b in zip(without_times(levels)[1:], without_times(fixed)[1:]):
        a.pop("rewind_probe", None)
        a.pop("files"), b.pop("files")
        assert a == b
    for level in (1, 2):
        ours = ticket.load_masks(os.path.join(d, f"level_{level:02d}", "masks.safetensors"))
        theirs = ticket.load_masks(str(tmp_path / "fixed" / f"level_{level:02d}" /
                                       "masks.safetensors"))
        assert all(torch.equal(ours.masks[n], theirs.masks[n]) for n in ours.names)
    # each pruned level names the point it rewound to as what it read
    assert f"points/iteration_{probe['chosen']:06d}.safetensors" in levels[2]["files"]
    # and lth-fast ticket names that point as the file to retrain from
    from lth_fast.imp.analyses.ticket import rewind_rel
    assert rewind_rel(d, 2) == f"points/iteration_{probe['chosen']:06d}.safetensors"
    assert rewind_rel(str(tmp_path / "fixed"), 2) == "rewind_point.safetensors"


def test_a_resumed_run_reuses_the_probe(mnist, auto, tmp_path, monkeypatch):
    cfg, d, levels = auto

    def never(run):
        raise AssertionError("the probe ran again")

    monkeypatch.setattr(rewind_probe, "_probe", never)
    shutil.copytree(d, tmp_path / "ext")
    more = run_imp(cfg.replace(levels=3), tmp_path / "ext", **QUIET)   # read from level 1
    assert more[1]["rewind_probe"] == levels[1]["rewind_probe"] and len(more) == 4
    cut = tmp_path / "cut"      # killed during level 1, after the probe: read from probe.json
    shutil.copytree(d, cut)
    for lv in ("level_01", "level_02"):
        shutil.rmtree(cut / lv)
    again = run_imp(cfg, cut, **QUIET)
    assert without_times(again)[1]["branches"] == without_times(levels)[1]["branches"]


def test_the_choice_is_the_smallest_stable_k_else_the_largest():
    def table(barriers):
        rows = [{"level": 1, "k": k, "repeat": 0, "split": "test", "alpha": a,
                 "error": (b if a == 0.5 else 0.1), "loss": 1.0}
                for k, b in barriers.items() for a in (0.0, 0.5, 1.0)]
        return summary_rows(rows, "classify", 0.02, {})

    assert rewind_probe.choose(table({400: 0.1, 25: 0.15, 100: 0.13})) == (400, True)
    assert rewind_probe.choose(table({400: 0.1, 25: 0.2, 100: 0.11})) == (100, True)
    assert rewind_probe.choose(table({0: 0.5, 25: 0.2, 100: 0.3})) == (100, False)
    record = {"rule": "test error barrier < 0.02", "repeats": 1, "points": 3,
              "table": table({0: 0.5, 25: 0.2}), "chosen": 25, "stable_found": False,
              "iterations": 10}
    assert "no candidate is stable: rewinding every level to the largest, k=25" in \
        rewind_probe.probe_lines(record)[-1]


def test_the_printed_summary_shows_the_probe(mnist, auto, capsys):
    cfg, d, _ = auto
    assert main(["imp", "--dataset", "mnist", "--data-dir", mnist, "--val-size", "100",
                 "--batch-size", "20", "--iterations", "12", "--eval-every", "4", "--levels",
                 "2", "--controls", "none", "--rewind", "auto", "--rewind-candidates", "8,0,4",
                 "--run-dir", d, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "--rewind auto: level 1's subnetwork, 1 pair(s) of children per candidate" in out
    assert "rewinding every level to k=" in out


@pytest.mark.parametrize("flags, message", [
    (["--rewind-candidates", "0,25"], "--rewind-candidates apply to --rewind='auto'"),
    (["--rewind", "auto"], "--rewind='auto' chooses among --rewind-candidates: give them"),
    (["--rewind", "auto", "--rewind-candidates", "0,1200"],
     "--rewind-candidates must be < --iterations (1200): [0, 1200]"),
    (["--rewind", "auto", "--rewind-candidates", "5,5"], "must be distinct iterations >= 0"),
    (["--stable-below", "0.05"], "--stable-below is the threshold of --rewind='auto'"),
    (["--rewind", "auto", "--rewind-candidates", "0", "--stable-below", "0"],
     "--stable-below must be > 0"),
    (["--rewind", "auto", "--rewind-candidates", "0", "--early-bird"],
     "--early-bird may stop level 0 before --rewind='auto'"),
])
def test_flags_that_do_not_apply_are_refused(capsys, tmp_path, flags, message):
    run = tmp_path / "run"
    assert main(["imp", "--run-dir", str(run), "--no-progress", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not run.exists()


def test_a_late_rewinding_preset_takes_auto_or_init_and_drops_its_k():
    """gpt_pydoc rewinds to iteration 100; --rewind auto (or init) replaces that mode, so the
    preset's k goes with it; a k given with them is still refused."""
    from lth_fast.imp import preset
    from lth_fast.pruning.rule import ConfigError
    auto = preset("gpt_pydoc", rewind="auto", rewind_candidates=(0, 25), controls=())
    assert (auto.pruning.rewind, auto.pruning.rewind_iteration) == ("auto", 0)
    assert preset("gpt_pydoc", rewind="init", controls=()).pruning.rewind_iteration == 0
    assert preset("gpt_pydoc", rewind="lr", controls=()).pruning.rewind_iteration == 100
    assert preset("gpt_pydoc").pruning.rewind_iteration == 100
    with pytest.raises(ConfigError, match="rewind_iteration=100 needs"):
        preset("gpt_pydoc", rewind="auto", rewind_candidates=(0,), rewind_iteration=100,
               controls=())
