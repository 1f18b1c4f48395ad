"""Lottery tickets inside Lightning's Trainer.fit: IMP levels of `epochs_per_level` epochs each.

    from lth_fast.integrations.lightning import LotteryTicket
    lt = LotteryTicket(levels=3, epochs_per_level=2)       # 20% per level, rewound to init
    trainer = lightning.Trainer(max_epochs=lt.max_epochs, callbacks=[lt])
    trainer.fit(model, train_loader)

At the end of each level's last epoch it prunes (global magnitude, or per layer with per-layer
rates), rewinds every weight to the rewind point (step 0, or rewind_step=k), clears the
optimizers' state and rewinds the learning-rate schedulers (lth_fast.integrations.levels).
A MaskedSGD/MaskedAdam/MaskedAdamW reads the masks in its fused step; any other optimizer is
masked through its step hooks (Pruner.attach).

Each level's density, and each pruned tensor's, go to the trainer's loggers (lth/density,
lth/level, lth_density/<tensor>) at the step the level starts. With monitor="val_loss" (any
logged metric; mode "min" or "max") each level's early stop, the best value and its step, goes
to them too when the level ends (lth_level/val_loss_at_early_stop, lth_level/early_stop_step),
and to a TensorBoardLogger's files with the density as the x-axis (lth_fast.tracking).

The masks (bit-packed) and the rewind point are in every checkpoint as safetensors bytes, so a
run resumed from one has them. Under DDP every rank prunes its replica and the ranks check that
their masks agree.

Needs the `lightning` package: pip install 'lth_fast[lightning]'."""
from __future__ import annotations


try:
    from lightning.pytorch import Callback
except ImportError:
    raise ModuleNotFoundError("lth_fast.integrations.lightning needs Lightning: pip install "
                              "'lth_fast[lightning]'", name="lightning") from None

from lightning.pytorch.loggers import TensorBoardLogger

from ..tracking import LevelLog
from .levels import IMPLevels
from .lightning_pruning import ModelPruning  # noqa: F401  (Lightning's, on the fused selection)


class LotteryTicket(Callback):
    """IMP inside Trainer.fit (see the module doc); the arguments are
    lth_fast.integrations.levels.IMPLevels's (levels, epochs_per_level, rate, scope,
    per_layer, nm, rewind_step, selection, include, exclude, monitor, mode)."""

    def __init__(self, *, levels: int, epochs_per_level: int, **options) -> None:
        self.imp = IMPLevels(levels=levels, epochs_per_level=epochs_per_level,
                             **{"selection": "default", **options})

    @property
    def max_epochs(self) -> int:
        """The epochs of the whole search (the Trainer's max_epochs)."""
        return self.imp.epochs

    pruner = property(lambda self: self.imp.pruner)
    level = property(lambda self: self.imp.level)

    # -- Lightning's hooks ----------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: str) -> None:
        self.imp.setup(pl_module)

    def on_fit_start(self, trainer, pl_module) -> None:
        self.imp.check_budget(trainer.max_epochs, "Trainer(max_epochs)")

    def on_train_start(self, trainer, pl_module) -> None:
        self.imp.setup(pl_module)
        self.imp.attach(trainer.optimizers)
        if not self.imp.has_rewind_point and self.imp.rewind_step == 0:
            self.imp.take_rewind_point(_schedulers(trainer))
        self._log(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.imp.has_rewind_point and trainer.global_step == self.imp.rewind_step:
            self.imp.take_rewind_point(_schedulers(trainer))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        while self.imp.level < self.imp.level_after(trainer.current_epoch + 1):
            self._end_level(trainer)
            self.imp.next_level(trainer.optimizers, _schedulers(trainer))
            self._log(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.imp.observe(trainer.callback_metrics, trainer.global_step)

    def on_train_end(self, trainer, pl_module) -> None:
        self._end_level(trainer)

    def state_dict(self) -> dict:
        return self.imp.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.imp.load_state_dict(state_dict)

    def _end_level(self, trainer) -> None:
        """The finished level's early stop to the loggers, and to TensorBoard at its density."""
        if not self.imp.end_level():
            return
        summary = {f"lth_level/{k}": v for k, v in self.imp.level_summary().items()}
        if summary:
            for logger in trainer.loggers:
                logger.log_metrics(summary, step=trainer.global_step)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    self.imp.track(LevelLog(logger.experiment))

    def _log(self, trainer) -> None:
        metrics = self.imp.metrics()
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)


def _schedulers(trainer) -> list:
    return [config.scheduler for config in trainer.lr_scheduler_configs]
