"""README.md and the docs pages: every python example runs as written, every README python
block is such an example, every relative link and image points at a file that exists, and the
docs site (mkdocs.yml) builds with warnings as errors.

An example is a fenced python block right after `<!-- example: NAME -->` (tests.helpers.readme).
Each is run here with the names it assumes (`model`, `weights`, ...) and then checked, or by the
tests of its subject (ELSEWHERE), which build the framework objects it needs."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import pytest
import torch

import lth_fast
from tests.helpers import ROOT, readme

ELSEWHERE = {"lightning": "tests/integrations/test_lightning.py",
             "hf": "tests/integrations/test_hf.py"}
# Pages whose python blocks are fragments of a larger setting, so not run here.
FRAGMENTS = {"docs/at-scale.md": "needs torchrun ranks and a device mesh",
             "docs/shipping.md": "needs an exported ticket (tests/shipping)",
             "docs/semantics.md": "the op contract, no examples",
             "docs/architecture.md": "recipes: code to add to the package, not run alone"}


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def train(model, opt, steps=3):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(16, 8, generator=g), torch.randint(0, 4, (16,), generator=g)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def assert_pruned_are_zero(model, pruner):
    params = dict(model.named_parameters())
    for name, mask in pruner.masks.items():
        assert not params[name][~mask].any(), name


def op_lists():
    """Three weights (the layer-scope example gives three amounts; N:M needs dim 1 % 4 == 0),
    their masks, and the other lists the op examples name."""
    g = torch.Generator().manual_seed(0)
    shapes = [(8, 16), (16, 8), (4, 16)]
    weights = [torch.randn(s, generator=g) for s in shapes]
    masks_b = [torch.ones(s, dtype=torch.bool) for s in shapes]
    masks_b[0][0, :5] = False
    return dict(weights=weights, masks=[torch.ones(s, dtype=torch.bool) for s in shapes],
                masks_a=[torch.ones(s, dtype=torch.bool) for s in shapes], masks_b=masks_b,
                params=[w.clone() for w in weights], snapshot=[w.clone() for w in weights],
                grads=[torch.randn(s, generator=g) for s in shapes],
                bufs=[torch.zeros(s) for s in shapes], exp_avgs=[torch.zeros(s) for s in shapes],
                exp_avg_sqs=[torch.zeros(s) for s in shapes], t=1)


def loop_scope(monkeypatch):
    return {"model": small_model(), "train": train, "levels": 2}


def check_loop(scope):
    assert scope["pruner"].density == pytest.approx(0.64, abs=0.01)
    assert os.path.getsize("ticket.safetensors") > 0
    assert_pruned_are_zero(scope["model"], scope["pruner"])


def ops_scope(monkeypatch):
    return op_lists()


def check_ops(scope):
    assert scope["stats"].pruned > 0
    for p, m in zip(scope["params"], scope["masks"]):
        assert not p[~m].any()


def imp_scope(monkeypatch):
    """The real preset and driver, with 20 iterations per level instead of 1,200."""
    import lth_fast.imp
    real = lth_fast.imp.preset
    monkeypatch.setattr(lth_fast.imp, "preset",
                        lambda name, **kw: real(name, **{**kw, "iterations": 20, "eval_every": 10}))
    return {}


def check_imp(scope):
    assert [m["level"] for m in scope["levels"]] == list(range(6))
    assert os.path.exists(os.path.join("runs", "lenet", "summary.csv"))


def attach_scope(monkeypatch):
    return {"model": small_model()}


def check_attach(scope):
    scope["pruner"].prune(0.5)
    train(scope["model"], scope["opt"])
    assert_pruned_are_zero(scope["model"], scope["pruner"])


def early_bird_scope(monkeypatch):
    return {**op_lists(), "pruner": lth_fast.Pruner(small_model()), "epoch": 0}


def check_early_bird(scope):
    assert isinstance(scope["bird"], lth_fast.EarlyBird)


def check_torch_prune(scope):
    import torch.nn.utils.prune as torch_prune
    model = scope["model"]
    hooks = {h._tensor_name: h for h in model[0]._forward_pre_hooks.values()}
    assert isinstance(hooks["weight"], torch_prune.CustomFromMask)
    assert isinstance(hooks["bias"], torch_prune.L1Unstructured)
    assert int((model[0].weight_mask == 0).sum()) > 0 and int((model[0].bias_mask == 0).sum()) == 3
    assert not hasattr(model[2], "weight_orig") and (model[2].weight == 0).any()


RUNS = {  # example: (the names it assumes, what it must have done)
    "pruner-loop": (loop_scope, check_loop),
    "pruner-loop-annotated": (loop_scope, check_loop),
    "ops-short": (ops_scope, check_ops),
    "ops": (ops_scope, check_ops),
    "run-imp": (imp_scope, check_imp),
    "presets-python": (imp_scope, check_imp),
    "attach": (attach_scope, check_attach),
    "early-bird": (early_bird_scope, check_early_bird),
    "torch-prune-dropin": (attach_scope, check_torch_prune),
}


def test_every_example_is_run_by_a_test():
    assert set(readme.examples()) == set(RUNS) | set(ELSEWHERE)


def test_every_python_block_is_an_example():
    for page in readme.markdown_files():
        if page not in FRAGMENTS:
            assert readme.untagged_blocks(page) == [], f"{page}: a python block with no tag"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs_as_written(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_scope, check = RUNS[name]
    scope = make_scope(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(readme.example(name), f"<example {name}>", "exec"), scope)
    check(scope)
    ours = [str(w.message) for w in caught
            if issubclass(w.category, DeprecationWarning) and "lth_fast" in str(w.message)]
    assert ours == [], f"example {name} uses a deprecated spelling"


def test_the_runner_reads_a_list_of_files(tmp_path):
    assert set(readme.examples(["README.md"])) == {"pruner-loop", "ops-short", "run-imp"}
    with pytest.raises(LookupError, match="no example 'hf' in README.md"):
        readme.example("hf", ["README.md"])


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(text):
    """GitHub's anchors of a page's headings."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", readme.markdown_files())
def test_links_point_at_files_that_exist(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path)) if path \
            else os.path.join(ROOT, page)
        assert os.path.exists(full), f"{page}: the link {target!r} points at nothing"
        if anchor and full.endswith(".md"):
            with open(full, encoding="utf-8") as f:
                assert anchor in anchors(f.read()), f"{page}: no heading for {target!r}"


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                          str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "The two commands" in home and 'href="api/"' in home
