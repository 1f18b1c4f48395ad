"""The experiment layer's seams: registries (criteria, branches, analyses), the seed streams and
data_seed, kept rewind points reproduced by retraining, config groups, and the worked
extending example of docs/architecture.md."""
from __future__ import annotations

import json
import os
import re

import pytest
import torch
from safetensors.torch import load_file

from lth_fast.imp import ANALYSES, BRANCHES, CRITERIA, IMPConfig, preset, run_imp, streams
from lth_fast.imp.criteria import Scoring
from lth_fast.imp.points import weights_at
from lth_fast.imp.registry import Registry
from lth_fast.imp.run_dir import RunDir
from lth_fast.pruning import Pruner
from lth_fast.pruning.rule import ConfigError

from tests.helpers.imp import learnable_mnist, tiny, without_times

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return str(learnable_mnist(tmp_path_factory.mktemp("mnist")))


# -- registries ---------------------------------------------------------------------------------
def test_registries_hold_todays_entries_in_table_order():
    pai = [c + v for c in ("snip", "grasp", "grasp_abs", "synflow", "magnitude_init")
           for v in ("", "_shuffled", "_reinit")]
    assert list(BRANCHES) == ["ticket", "init", "reinit", "random"] + pai
    assert BRANCHES.names(control=True) == ["init", "reinit", "random"] + pai
    assert list(CRITERIA) == ["magnitude", "random", "snip", "grasp", "grasp_abs", "synflow",
                              "magnitude_init"]
    assert list(ANALYSES) == ["ticket", "seeds", "export", "instability"]
    assert len({BRANCHES[b].tag for b in BRANCHES}) == 4 + len(pai)


def test_a_registry_refuses_twins_and_names_the_known_ones():
    reg = Registry("thing", unique=("tag",))

    class A:
        name, tag = "a", 1

    class B:
        name, tag = "b", 1

    reg.register(A)
    with pytest.raises(ValueError, match="thing 'a' is registered twice"):
        reg.register(A)
    with pytest.raises(ValueError, match="thing 'b' has tag 1, which 'a' has already"):
        reg.register(B)
    with pytest.raises(ConfigError, match="^where: unknown thing 'c'; known: a$"):
        reg.check("c", "where")


def test_unknown_names_are_one_line_errors_listing_the_known(capsys):
    from lth_fast.cli import main
    with pytest.raises(SystemExit) as e:   # argparse's usage error, status 2
        main(["imp", "--controls", "nope", "--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown controls ['nope']; known: init, reinit, random, snip," in err
    assert err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        main(["imp", "--criterion", "nope", "--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "magnitude" in err and err.count("\n") == 1


def test_no_branch_or_criterion_name_is_tested_in_the_layers():
    """No if/else over branch or criterion names in imp/ or integrations/: the registries
    dispatch (a branch's own file may name itself; registrations name themselves)."""
    names = set(BRANCHES) | set(CRITERIA)
    pattern = re.compile(r"\b(?:if|elif)\b[^\n]*(?:==|!=|\bin\b)\s*\(?[^\n]*[\"'](%s)[\"']"
                         % "|".join(sorted(names)))
    pkg = os.path.join(ROOT, "lth_fast")
    found = []
    for folder in ("imp", "integrations"):
        for dirpath, _, files in os.walk(os.path.join(pkg, folder)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    with open(path) as fh:
                        for i, line in enumerate(fh, 1):
                            if pattern.search(line):
                                found.append(f"{os.path.relpath(path, ROOT)}:{i}: {line.strip()}")
    assert not found, "\n".join(found)


# -- criteria ------------------------------------------------------------------------------------
def test_the_random_criterion_through_pruner_is_prune_on_its_scores():
    import lth_fast
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(30, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
    pruner = Pruner(model)
    scores = CRITERIA["random"].scores(Scoring(pruner, seed=123))
    assert list(scores) == list(pruner.names)
    again = CRITERIA["random"].scores(Scoring(pruner, seed=123))
    assert all(torch.equal(scores[n], again[n]) for n in scores)
    masks = [torch.ones_like(scores[n], dtype=torch.bool) for n in pruner.names]
    lth_fast.prune_([scores[n] for n in pruner.names], masks, 0.3)  # the op itself
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    pruner.prune(0.3, scores=scores)
    for n, m in zip(pruner.names, masks):
        assert torch.equal(pruner.masks[n], m)
        assert torch.equal(model.get_parameter(n).detach(), before[n] * m)
    assert CRITERIA["magnitude"].scores(Scoring(pruner, seed=0)) is None  # |w| itself


# -- streams and data_seed -----------------------------------------------------------------------
def test_streams_are_the_codes_runs_were_written_with():
    assert streams.branch(0, 1, 3) == 104732
    assert streams.branch(5, 2, 0) == (5 * 7919 + 2) * 104729
    g = streams.data(3, streams.DATA_ORDER, 7)
    assert g.initial_seed() == (3 * 1_000_003 + 1) * 1_000_033 + 7
    with pytest.raises(ValueError, match="out of range"):
        streams.branch(0, 7919, 0)


def test_data_seed_changes_the_order_and_not_the_initialisation(mnist, tmp_path):
    base = dict(levels=0, iterations=20, eval_every=10)
    runs = {}
    for name, kw in (("a", {}), ("same", dict(data_seed=0)), ("b", dict(data_seed=7))):
        d = tmp_path / name
        runs[name] = run_imp(tiny(mnist, keep_points=(0,), **base, **kw), d, progress=False,
                             log=lambda s: None)
        runs[name + "_w0"] = load_file(RunDir(d).file(RunDir.point_rel(0)))
        runs[name + "_end"] = load_file(RunDir(d).file("level_00/checkpoint.safetensors"))
    assert without_times(runs["a"]) == without_times(runs["same"])  # the default is the seed
    for k in runs["a_w0"]:
        assert torch.equal(runs["a_w0"][k], runs["b_w0"][k])   # one initialisation
    assert any(not torch.equal(runs["a_end"][k], runs["b_end"][k]) for k in runs["a_end"])
    with pytest.raises(ValueError, match=r"data.data_seed must be in \[0, 18,000,000\)"):
        tiny(mnist, data_seed=-1)


# -- rewind points -------------------------------------------------------------------------------
def test_kept_points_are_the_bytes_retraining_from_init_gives(mnist, tmp_path):
    cfg = tiny(mnist, levels=1, iterations=30, eval_every=10, keep_points=(0, 7, 20),
               rewind="iteration", rewind_iteration=7, controls=())
    levels = run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    files = RunDir(tmp_path / "run")
    assert levels[0]["points"] == [0, 7, 20]
    assert set(levels[0]["files"]) >= {files.point_rel(k) for k in (0, 7, 20)}
    rewind_point = load_file(files.file("rewind_point.safetensors"))
    for k in (0, 7, 20):
        kept = load_file(files.file(files.point_rel(k)))
        again = weights_at(cfg, k)
        assert set(kept) == set(again)
        for name in kept:   # bytes: the same values, dtype and shape
            assert torch.equal(kept[name], again[name]) and kept[name].dtype == again[name].dtype
        if k == 7:
            assert all(torch.equal(kept[n], rewind_point[n]) for n in kept)
    # a changed kept point is found on resume, as any level-0 file is
    path = files.file(files.point_rel(20))
    tensors = load_file(path)
    first = next(iter(tensors))
    tensors[first] = tensors[first] + 1
    from safetensors.torch import save_file
    save_file(tensors, path)
    with pytest.raises(ValueError, match="points/iteration_000020.safetensors does not match"):
        run_imp(cfg.replace(levels=2), tmp_path / "run", progress=False, log=lambda s: None)
    with pytest.raises(ValueError, match=r"iteration must be in \[0, 30\]"):
        weights_at(cfg, 31)


def test_early_bird_keeps_only_the_points_it_reached(mnist, tmp_path):
    cfg = tiny(mnist, levels=0, iterations=200, eval_every=10, keep_points=(5, 190),
               early_bird=1.0, early_bird_window=2)
    levels = run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    stopped = levels[0]["early_bird"]["stopped_at"]
    assert stopped < 190 and levels[0]["points"] == [5]
    assert not os.path.exists(RunDir(tmp_path / "run").file(RunDir.point_rel(190)))


# -- config groups -------------------------------------------------------------------------------
def test_config_groups_round_trip_flat_and_grouped():
    cfg = preset("gpt_pydoc", data_seed=3, keep_points=(0, 100))
    assert cfg.training.lr == 3e-3 and cfg.model.name == "gpt" and cfg.data_seed == 3
    assert IMPConfig.from_dict(cfg.to_dict()) == cfg
    assert IMPConfig.from_dict(cfg.flat()) == cfg   # a config.json written before the groups
    assert set(cfg.to_dict()) == {"data", "model", "training", "pruning", "run"}
    assert cfg.replace(lr=1e-3).differences(cfg) == ["training.lr: 0.001 != 0.003"]
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\] in group 'model'"):
        IMPConfig.from_dict({**cfg.to_dict(), "model": {"colour": 1}})
    # a field added later (e.g. data_seed, keep_points) reads its no-op default from an old file
    flat = cfg.flat()
    for name in ("data_seed", "keep_points", "criterion"):
        flat.pop(name)
    assert IMPConfig.from_dict(flat) == preset("gpt_pydoc")


def test_cli_shows_config_errors_with_flags(capsys):
    from lth_fast.cli import main
    assert main(["imp", "--lr", "-1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == "lth-fast imp: --lr must be > 0, got -1.0\n"
    assert main(["imp", "--rewind-iteration", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == "lth-fast imp: --rewind-iteration=5 needs --rewind='iteration' or 'lr'\n"
    assert main(["imp", "--keep-points", "0,5000", "--no-progress"]) == 2
    assert "--keep-points must be <= --iterations (1200)" in capsys.readouterr().err


# -- the worked example of docs/architecture.md --------------------------------------------------
def test_the_extending_example_runs_as_written(tmp_path, monkeypatch):
    """The docs' criterion and branch register, join an experiment and train (on the embedded
    digits); then they are taken out of the registries again."""
    with open(os.path.join(ROOT, "docs", "architecture.md")) as f:
        text = f.read()
    start = text.index("### A new criterion")
    blocks = re.findall(r"```python\n(.*?)```", text[start:], re.S)
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)
    saved = (dict(BRANCHES._entries), dict(CRITERIA._entries))
    try:
        scope: dict = {}
        for block in blocks:
            exec(compile(block, "docs/architecture.md", "exec"), scope)
        levels = scope["levels"]
        assert set(levels[1]["branches"]) == {"ticket", "shuffled"}
        with open(tmp_path / "runs" / "extending-example" / "summary.csv") as f:
            head = f.readline()
        assert "shuffled_test_accuracy_at_early_stop" in head
        masks = json.loads(json.dumps(levels[1]["layers"]))
        assert masks  # the level pruned (by movement) and reported its layers
    finally:
        BRANCHES._entries.clear()
        BRANCHES._entries.update(saved[0])
        CRITERIA._entries.clear()
        CRITERIA._entries.update(saved[1])


def test_the_ticket_may_be_named_among_the_controls():
    """It always runs, so naming it (as in `--controls ticket,reinit,random`) changes nothing."""
    from lth_fast.imp.cli import _controls
    assert _controls("ticket,reinit,random") == ["reinit", "random"]
    assert IMPConfig.of(controls=("ticket", "random")).pruning.controls == ("random",)
