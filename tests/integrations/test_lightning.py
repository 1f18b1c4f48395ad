"""lth_fast.integrations.lightning.LotteryTicket inside real Trainer.fit runs: levels prune and
rewind every weight to the rewind point, clear the optimizer's state and rewind the LR
schedule; pruned entries of weights and optimizer state stay exactly 0 (plain AdamW through
Pruner.attach, or MaskedAdamW); densities reach the trainer's loggers; a run resumed from a
checkpoint in the middle of IMP ends exactly where the uninterrupted one does; under DDP
(2 processes, gloo) the ranks' masks agree."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

L = pytest.importorskip("lightning")

from lightning.pytorch.callbacks import Callback, ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from lth_fast.integrations.lightning import LotteryTicket  # noqa: E402
from lth_fast.pruning import ticket  # noqa: E402

from tests.helpers import ROOT  # noqa: E402
from tests.helpers.lightning import LR, TinyNet, loader, trainer  # noqa: E402



class LevelStarts(Callback):
    """What each epoch starts with: the lr, the optimizer's state size, the weights."""

    def __init__(self):
        self.seen = {}

    def on_train_epoch_start(self, trainer, pl_module):
        opt = trainer.optimizers[0]
        self.seen[trainer.current_epoch] = dict(
            lr=opt.param_groups[0]["lr"], state=len(opt.state),
            weights={n: p.detach().clone() for n, p in pl_module.named_parameters()})


def _assert_pruned_zero(model, opt, pruner):
    params = dict(model.named_parameters())
    for n, m in pruner.masks.items():
        p = params[n]
        assert not p[~m].any(), n
        for k, v in opt.state[p].items():
            if isinstance(v, torch.Tensor) and v.shape == p.shape:
                assert not v[~m].any(), f"{n}: optimizer state {k} has pruned entries"


@pytest.mark.parametrize("optimizer", ["adamw", "masked"])
def test_levels_prune_rewind_and_reset(tmp_path, optimizer):
    torch.manual_seed(0)
    model = TinyNet(optimizer)
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    lt = LotteryTicket(levels=2, epochs_per_level=2)
    starts = LevelStarts()
    tr = trainer(lt.max_epochs, [lt, starts], logger=CSVLogger(str(tmp_path)))
    tr.fit(model, loader())
    assert lt.level == 2 and lt.pruner.density == pytest.approx(0.64, abs=0.002)
    for epoch in (2, 4):  # each pruned level starts at the rewind point, afresh
        seen = starts.seen[epoch]
        assert seen["state"] == 0 and seen["lr"] == LR
        for n, w in seen["weights"].items():
            want = init[n]
            if n in lt.pruner.masks and epoch == 4:   # the final masks are level 2's
                want = torch.where(lt.pruner.masks[n], want, torch.zeros_like(want))
            if epoch == 4 or n not in lt.pruner.masks:
                assert torch.equal(w, want), f"epoch {epoch}: {n} was not rewound"
    assert starts.seen[1]["lr"] == LR / 2       # the schedule did run within a level
    _assert_pruned_zero(model, tr.optimizers[0], lt.pruner)
    rows = open(os.path.join(tr.logger.log_dir, "metrics.csv")).read().splitlines()
    header = rows[0].split(",")
    density = [float(r.split(",")[header.index("lth/density")]) for r in rows[1:]]
    assert density[0] == 1.0 and density[1] == pytest.approx(0.8, abs=0.002)
    assert "lth_density/net.4.weight" in header


def test_resume_mid_imp_ends_where_the_uninterrupted_run_does(tmp_path):
    torch.manual_seed(0)
    lt = LotteryTicket(levels=2, epochs_per_level=2, rewind_step=2)
    ckpt = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_top_k=-1, every_n_epochs=1)
    model = TinyNet()
    trainer(lt.max_epochs, [lt, ckpt], enable_checkpointing=True).fit(model, loader())
    mid = tmp_path / "ckpt" / "epoch=2-step=12.ckpt"   # inside level 1
    assert mid.exists()
    state = torch.load(mid, weights_only=True)          # no pickled object of ours
    ours = next(v for k, v in state["callbacks"].items() if k.startswith("LotteryTicket"))
    assert ours["level"] == 1 and isinstance(ours["ticket"], bytes)
    assert not any(isinstance(v, torch.Tensor) for v in ours.values())

    torch.manual_seed(123)                              # another init: the checkpoint decides
    resumed_lt = LotteryTicket(levels=2, epochs_per_level=2, rewind_step=2)
    resumed = TinyNet()
    trainer(resumed_lt.max_epochs, [resumed_lt]).fit(resumed, loader(), ckpt_path=str(mid))
    assert resumed_lt.level == 2
    for n in lt.pruner.names:
        assert torch.equal(resumed_lt.pruner.masks[n], lt.pruner.masks[n])
    for (n, p), q in zip(model.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), f"{n} differs after resuming"


def test_levels_early_stop_to_tensorboard_at_the_density(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    torch.manual_seed(0)
    lt = LotteryTicket(levels=2, epochs_per_level=2, monitor="val_loss")
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    trainer(lt.max_epochs, [lt], logger=logger).fit(TinyNet(), loader(), loader(seed=1))
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    density = [10000, 8000, round(lt.pruner.density * 10000)]
    levels = events.Scalars("imp/level")
    assert [(e.step, e.value) for e in levels] == list(zip(density, [0, 1, 2]))
    best = events.Scalars("imp/ticket/val_loss_at_early_stop")
    assert [e.step for e in best] == density
    steps = [e.value for e in events.Scalars("imp/ticket/early_stop_step")]
    assert steps[0] in (4, 8) and steps[1] in (12, 16) and steps[2] in (20, 24)
    assert "imp_density/net.4.weight" in events.Tags()["scalars"]
    assert "lth/density" in events.Tags()["scalars"]      # and against training steps


def test_layer_scope_per_layer_rates_and_errors():
    torch.manual_seed(0)
    model = TinyNet()
    lt = LotteryTicket(levels=1, epochs_per_level=1, scope="layer",
                       per_layer={"net.4.weight": 0.5})
    trainer(lt.max_epochs, [lt]).fit(model, loader())
    left = {r["name"]: r["remaining"] for r in lt.pruner.report()}
    assert left["net.0.weight"] == pytest.approx(80.0, abs=0.5)
    assert left["net.4.weight"] == pytest.approx(50.0, abs=1.0)
    with pytest.raises(ValueError, match="per_layer rates need scope='layer'"):
        LotteryTicket(levels=1, epochs_per_level=1, per_layer={"net.0.weight": 0.5})
    with pytest.raises(ValueError, match="epochs_per_level"):
        LotteryTicket(levels=1, epochs_per_level=0)
    with pytest.raises(ValueError, match="rate must be"):
        LotteryTicket(levels=1, epochs_per_level=1, rate=1.5)
    bad = LotteryTicket(levels=1, epochs_per_level=1, scope="layer", per_layer={"nett.0": 0.5})
    with pytest.raises(ValueError, match="not pruned tensors"):
        trainer(bad.max_epochs, [bad]).fit(TinyNet(), loader())


def test_docs_lightning_example_runs_as_written(tmp_path, monkeypatch):
    from tests.helpers.readme import example
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    scope = {"model": TinyNet(), "train_loader": loader()}
    exec(example("lightning"), scope)
    assert scope["lt"].level == scope["lt"].imp.levels


def test_ddp_ranks_agree_on_the_masks(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    script = os.path.join(ROOT, "tests", "scripts", "lightning_ddp.py")
    out = subprocess.run([sys.executable, script, str(tmp_path)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    masks = [ticket.load_masks(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    assert masks[0].names == masks[1].names
    for n in masks[0].names:
        assert torch.equal(masks[0].masks[n], masks[1].masks[n])
    assert 0.63 < masks[0].density < 0.65
