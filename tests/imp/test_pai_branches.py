"""The pruning-at-init branches in an IMP run: each prunes the rewind point's network by its
criterion to the level's density (the ticket's per-layer counts, or its total with a global
scope), its shuffled ablation keeps the per-layer counts on the same weights, its reinit
ablation keeps the masks on a fresh initialisation; pai_levels chooses the levels; the config
refuses what does not apply, in one line."""
from __future__ import annotations

import pytest
import torch

from lth_fast.imp import BRANCHES, preset, run_imp, streams
from lth_fast.imp.branches.pai import TAGS
from lth_fast.imp.criteria import CRITERIA, scoring
from lth_fast.imp.build import new_model, new_pruner
from lth_fast.imp.report import format_table, summary_rows
from lth_fast.imp.tasks import load_task
from lth_fast.pruning import ticket
from lth_fast.pruning.rule import ConfigError

from tests.helpers.imp import learnable_mnist, tiny, without_times

PAI = ("snip", "snip_shuffled", "snip_reinit", "synflow", "grasp", "magnitude_init_reinit")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return learnable_mnist(str(tmp_path_factory.mktemp("mnist")))


def spy_runs(monkeypatch):
    """(label, weights, masks) of every training the driver starts."""
    from lth_fast.imp import driver

    seen = []
    real = driver.train_run

    def spy(model, pruner, task, cfg, start=0, **kw):
        seen.append(({k: v.detach().clone() for k, v in model.state_dict().items()},
                     {n: m.clone() for n, m in pruner.masks.items()}))
        return real(model, pruner, task, cfg, start=start, **kw)
    monkeypatch.setattr(driver, "train_run", spy)
    return seen


def expected_masks(cfg, criterion, level, selection):
    task = load_task(cfg)
    model = new_model(cfg, task, streams.init(cfg.seed))
    pruner = new_pruner(model, cfg)
    ctx = scoring(pruner, streams.branch(cfg.seed, TAGS[criterion], level), task, "cpu",
                  cfg.pruning)
    CRITERIA[criterion].prune(ctx, selection)
    return pruner.masks, {k: v.detach() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_pai_branches_and_their_ablations(data_dir, tmp_path, monkeypatch, scope):
    kw = dict(scope="global", output_rate=None) if scope == "global" else {}
    cfg = tiny(data_dir, levels=2, controls=PAI, pai_levels=(2,), synflow_rounds=5, **kw)
    seen = spy_runs(monkeypatch)
    levels = run_imp(cfg, tmp_path / "run", progress=False, log=lambda s: None)
    assert set(levels[1]["branches"]) == {"ticket"}        # pai_levels: level 2 only
    assert list(levels[2]["branches"]) == ["ticket", *PAI]
    assert len(seen) == 3 + len(PAI)
    tmask = ticket.load_masks(tmp_path / "run" / "level_02" / "masks.safetensors").masks
    names = list(tmask)
    init = seen[0][0]
    by = dict(zip(PAI, seen[3:]))
    if scope == "layer":
        sel = dict(amount=0, scope="layer",
                   per_layer={n: int((~tmask[n]).sum()) for n in names})
    else:
        sel = dict(amount=sum(int((~tmask[n]).sum()) for n in names), scope="global")
    want, _ = expected_masks(cfg, "snip", 2, sel)
    for name, (w, m) in by.items():
        if scope == "layer":
            assert all(int(m[n].sum()) == int(tmask[n].sum()) for n in names), name
        assert sum(int(m[n].sum()) for n in names) == sum(int(tmask[n].sum()) for n in names)
        for n in names:
            assert not w[n][~m[n]].any(), f"{name}: pruned {n} not 0"
        if not name.endswith("_reinit"):   # the rewind point's (here: initial) weights
            assert all(torch.equal(w[n], init[n] * m[n]) for n in names), name
    snip_w, snip_m = by["snip"]
    assert all(torch.equal(snip_m[n], want[n]) for n in names)
    shuf_w, shuf_m = by["snip_shuffled"]
    assert all(int(shuf_m[n].sum()) == int(snip_m[n].sum()) for n in names)
    assert not all(torch.equal(shuf_m[n], snip_m[n]) for n in names)
    re_w, re_m = by["snip_reinit"]
    assert all(torch.equal(re_m[n], snip_m[n]) for n in names)
    assert all((re_w[n][re_m[n]] != init[n][re_m[n]]).all() for n in names)
    assert not all(torch.equal(by["synflow"][1][n], snip_m[n]) for n in names)
    mag, _ = expected_masks(cfg, "magnitude_init", 2, sel)
    assert all(torch.equal(by["magnitude_init_reinit"][1][n], mag[n]) for n in names)
    rows = summary_rows(levels)
    assert rows[1]["snip_test_accuracy_at_early_stop"] is None
    assert rows[2]["snip_test_accuracy_at_early_stop"] is not None
    assert "snip_shuffled acc@es" in format_table(rows)


def test_the_registries_know_every_criterion_and_its_two_ablations():
    for c in ("snip", "grasp", "grasp_abs", "synflow", "magnitude_init"):
        assert c in CRITERIA
        for b in (c, c + "_shuffled", c + "_reinit"):
            assert BRANCHES[b].criterion == c and BRANCHES[b].control
    assert len({BRANCHES[b].tag for b in BRANCHES}) == len(list(BRANCHES))


@pytest.mark.parametrize("kw, message", [
    (dict(controls=("snip",), scope="nm", levels=1, output_rate=None),
     "pruning at initialisation (pruning.controls) prunes to the level's density; "
     "pruning.scope 'nm' keeps a pattern and has none"),
    (dict(pai_levels=(3,)), "pruning.pai_levels chooses the levels of the pruning-at-init "
                            "branches, and pruning.controls names none"),
    (dict(controls=("snip",), pai_levels=(15,)), "pruning.pai_levels must be pruned levels "
                                                 "in 1..pruning.levels (14), got [15]"),
    (dict(controls=("snip",), synflow_float64=True), "pruning.synflow_float64 applies to a "
                                                     "criterion that reads it"),
    (dict(controls=("synflow_shuffled",), pai_examples=5), "pruning.pai_examples applies"),
    (dict(controls=("synflow",), synflow_rounds=0), "pruning.synflow_rounds must be >= 1"),
])
def test_config_refuses_what_does_not_apply(kw, message):
    with pytest.raises(ConfigError, match="^IMPConfig: " + message.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        preset("lenet_mnist5k", **kw)


def test_options_read_by_the_criterion_of_the_ticket_or_a_branch_are_accepted():
    assert preset("lenet_mnist5k", criterion="synflow", synflow_rounds=3).pruning.synflow_rounds \
        == 3
    assert preset("lenet_mnist5k", controls=("grasp_abs_reinit",), pai_examples=2)
    assert preset("lenet_mnist5k", controls=("synflow",), synflow_float64=True)


def test_the_command_line_names_the_flags_in_one_line(capsys):
    from lth_fast.cli import main
    assert main(["imp", "--controls", "snip", "--pai-levels", "20", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--pai-levels must be pruned levels in 1..--levels" in err
    assert main(["imp", "--synflow-float64", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--synflow-float64 applies" in err


def test_a_gpt_run_trains_every_criterion(tmp_path):
    tiny_gpt = dict(n_layer=1, n_head=2, n_embd=8, block_size=16, batch_size=8, iterations=8,
                    eval_every=4, warmup=2, rewind_iteration=2, levels=1, pai_examples=2,
                    synflow_rounds=3, controls=("snip", "grasp", "grasp_abs", "synflow",
                                                "magnitude_init_shuffled"))
    levels = run_imp(preset("gpt_pydoc", **tiny_gpt), tmp_path / "run", progress=False,
                     log=lambda s: None)
    assert set(levels[1]["branches"]) == {"ticket", *tiny_gpt["controls"]}
    for b in levels[1]["branches"].values():
        assert b["early_stop_val_loss"] > 0


def test_the_seeds_table_shows_them_with_spreads_where_they_ran(data_dir, tmp_path):
    from lth_fast.imp.analyses.seeds import combine, format_markdown
    dirs = []
    for seed in (0, 1):
        cfg = tiny(data_dir, levels=2, iterations=20, controls=("random", "snip"),
                   pai_levels=(2,), seed=seed)
        run_imp(cfg, tmp_path / f"s{seed}", progress=False, log=lambda s: None)
        dirs.append(str(tmp_path / f"s{seed}"))
    table = format_markdown(combine(dirs)).splitlines()
    assert table[0].startswith("| level | weights left | ticket | random pruning | SNIP |")
    level1, level2 = table[3].split("|"), table[4].split("|")
    assert level1[5].strip() == "–" and "±" in level2[5]


def test_pai_levels_may_be_added_beyond_a_finished_run(data_dir, tmp_path):
    """A run extended to more levels may name pruning-at-init levels among the new ones (the
    finished levels are kept, not redone), and the result is the run made in one go; a change
    at a level the run already had is another experiment."""
    kw = dict(iterations=20, controls=("snip",))
    run_imp(tiny(data_dir, levels=1, pai_levels=(1,), **kw), tmp_path / "run", progress=False,
            log=lambda s: None)
    mtime = (tmp_path / "run" / "level_01" / "metrics.json").stat().st_mtime_ns
    with pytest.raises(ValueError, match=r"different experiment \(pruning\.pai_levels: "
                                         r"\[1\] != \[2\]\)"):
        run_imp(tiny(data_dir, levels=2, pai_levels=(2,), **kw), tmp_path / "run",
                progress=False, log=lambda s: None)
    longer = run_imp(tiny(data_dir, levels=2, pai_levels=(1, 2), **kw), tmp_path / "run",
                     progress=False, log=lambda s: None)
    assert (tmp_path / "run" / "level_01" / "metrics.json").stat().st_mtime_ns == mtime
    whole = run_imp(tiny(data_dir, levels=2, pai_levels=(1, 2), **kw), tmp_path / "whole",
                    progress=False, log=lambda s: None)
    assert without_times(longer) == without_times(whole)
    assert set(longer[2]["branches"]) == {"ticket", "snip"}
    assert (tmp_path / "run" / "config.json").read_text() == \
        (tmp_path / "whole" / "config.json").read_text()
