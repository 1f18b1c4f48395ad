"""IMP levels inside a framework's training run: what the Lightning and Hugging Face callbacks
share. The framework trains; at each level's end this prunes, rewinds every weight to the rewind
point (pruned ones to 0), clears the optimizers' state and puts the learning-rate schedules
back where they were at the rewind point, so the next level trains the ticket afresh.

Its state (level, bit-packed masks, the rewind point, the schedules there) is plain data: bytes
of safetensors and Python numbers, so a framework's checkpoint holds no pickled tensor and a
resumed run has its masks and its rewind point."""
from __future__ import annotations

import copy
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..optim.masked import MaskedOptimizer
from ..pruning import Pruner, ticket
from ..pruning.attach import unwrap_optimizer
from ..pruning.level import next_level
from ..pruning.rule import ConfigError, PruneRule
from ..pruning.schedule import SchedulePoint
from ..pruning.selection import transformer_weights

SELECTIONS = ("default", "transformer")


class IMPLevels:
    """levels: pruning rounds after the dense level 0, each of epochs_per_level epochs;
    rate: the fraction of surviving weights pruned per round (scope "global": one ranking;
    "layer": each tensor alone, per_layer {name: rate} overriding rate; "nm": keep nm[0] of
    every nm[1] consecutive input weights, in one level), checked by the same rules as the IMP
    driver's (lth_fast.pruning.rule); rewind_step: the
    optimizer step whose weights the tickets rewind to (0: the initialisation; k > 0: late
    rewinding, Frankle et al. 2020); selection: "default" (every Linear / Conv weight,
    lth_fast.pruning.selection; include narrows it) or "transformer" (the Linear weights of
    the numbered blocks: embeddings, norms, biases and heads stay dense); exclude leaves more
    dense in either; monitor / mode: a metric whose best value per level is its early stop."""

    def __init__(self, *, levels: int, epochs_per_level: int = 1, rate: float = 0.2,
                 scope: str = "global", per_layer: Optional[Mapping[str, float]] = None,
                 nm: Tuple[int, int] = (2, 4), rewind_step: int = 0, selection: str = "default", include=None,
                 exclude=None, monitor: Optional[str] = None, mode: str = "min",
                 where: str = "LotteryTicket") -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"{where}: {what}")

        need(isinstance(levels, int) and levels >= 1, f"levels must be an int >= 1, got {levels!r}")
        need(isinstance(epochs_per_level, int) and epochs_per_level >= 1,
             f"epochs_per_level must be an int >= 1, got {epochs_per_level!r}")
        need(isinstance(rate, float), f"rate must be a float, got {rate!r}")
        need(not per_layer or scope == "layer", "per_layer rates need scope='layer'")
        try:  # the driver's rules, in this class's names
            self.rule = PruneRule(scope, rate, None, dict(per_layer or {}), tuple(nm))
        except ConfigError as e:
            raise ValueError(f"{where}: " + e.render({"layer_rates": "per_layer",
                                                      "nm_n": "nm[0]", "nm_m": "nm[1]"})) from None
        need(scope != "nm" or levels == 1, f"scope 'nm' reaches its {nm[0]}:{nm[1]} pattern "
                                           f"in one level; give levels=1, not {levels}")
        need(isinstance(rewind_step, int) and rewind_step >= 0,
             f"rewind_step must be an int >= 0, got {rewind_step!r}")
        need(selection in SELECTIONS, f"selection must be one of {SELECTIONS}, got {selection!r}")
        need(mode in ("min", "max"), f"mode must be 'min' or 'max', got {mode!r}")
        need(monitor is None or (isinstance(monitor, str) and monitor),
             f"monitor must be a metric name, got {monitor!r}")
        need(selection == "default" or include is None, "include narrows the default selection; "
             "with selection='transformer' use exclude")
        self.levels, self.epochs_per_level = levels, epochs_per_level
        self.rate, self.scope = rate, scope
        self.per_layer = dict(per_layer or {})
        self.rates: Optional[Dict[str, float]] = None   # per tensor, once the model is known
        self.rewind_step, self.selection = rewind_step, selection
        self.include, self.exclude, self.where = include, exclude, where
        self.monitor, self.mode = monitor, mode
        self.best: Optional[tuple] = None   # (value, step): this level's early stop so far
        self.level = 0
        self.ended = -1   # the last level whose end was reported (end_level)
        self.pruner: Optional[Pruner] = None
        self.schedules: List[SchedulePoint] = []
        self._pending: Optional[dict] = None
        self._handles: list = []

    @property
    def epochs(self) -> int:
        """The epochs of the whole search: the dense level and every pruned one."""
        return self.epochs_per_level * (self.levels + 1)

    def check_budget(self, epochs, setting: str) -> None:
        """The framework's epoch budget (`setting`, e.g. "Trainer(max_epochs)") must be the
        search's: fewer would stop IMP inside a level, more would train on at the last density."""
        if epochs != self.epochs:
            raise ValueError(f"{self.where}: {setting} is {epochs}, but levels={self.levels} of "
                             f"epochs_per_level={self.epochs_per_level} take {self.epochs} "
                             f"epochs (the dense level and {self.levels} pruned); give "
                             f"{setting} = {self.epochs}")

    def level_after(self, epochs_done: int) -> int:
        """The level training is in once `epochs_done` epochs are finished."""
        return min(epochs_done // self.epochs_per_level, self.levels)

    def end_level(self) -> bool:
        """True the first time it is called for the current level: its end is to be reported."""
        if self.ended == self.level or self.pruner is None:
            return False
        self.ended = self.level
        return True

    # -- the model and its optimizers -------------------------------------------------------------
    def setup(self, model: nn.Module) -> Pruner:
        """The Pruner over `model` (made once), with any state loaded before it existed."""
        if self.pruner is None:
            include = self.include
            if self.selection == "transformer":
                include = transformer_weights(model)
            self.pruner = Pruner(model, include=include, exclude=self.exclude)
            try:
                self.rates = self.rule.rates(self.pruner.names, None)
            except ConfigError as e:
                raise ValueError(f"{self.where}: "
                                 f"{e.render({'layer_rates': 'per_layer'})}") from None
        if self._pending is not None:
            state, self._pending = self._pending, None
            self.load_state_dict(state)
        return self.pruner

    def attach(self, optimizers: Sequence) -> None:
        """Masks every optimizer: a MaskedSGD/Adam/AdamW reads the Pruner's masks in its fused
        step; any other is masked through its step hooks (Pruner.attach)."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for opt in optimizers:
            inner = unwrap_optimizer(opt, self.where)
            if isinstance(inner, MaskedOptimizer):
                inner.set_masks(self.pruner)
            else:
                self._handles.append(self.pruner.attach(inner))

    @property
    def has_rewind_point(self) -> bool:
        return self.pruner is not None and self.pruner.mask_set.snapshot is not None

    @torch.no_grad()
    def take_rewind_point(self, schedulers: Sequence = ()) -> None:
        """The network (every parameter and buffer: Pruner.snapshot) and the schedules, now."""
        self.pruner.snapshot()
        self.schedules = [SchedulePoint(s) for s in schedulers]

    @torch.no_grad()
    def next_level(self, optimizers: Sequence, schedulers: Sequence = ()):
        """Prunes, rewinds the weights, clears the optimizers' state, rewinds the schedules;
        returns what prune did."""
        if not self.has_rewind_point:
            raise RuntimeError(f"{self.where}: no rewind point: rewind_step {self.rewind_step} "
                               f"was not reached during the first level")
        if len(schedulers) != len(self.schedules):
            raise RuntimeError(f"{self.where}: {len(schedulers)} learning-rate schedulers now, "
                               f"{len(self.schedules)} at the rewind point")
        self.best = None
        stats = next_level(self.pruner, self.rule.args(self.rates), optimizers=optimizers, schedules=list(zip(self.schedules, schedulers)),
                           verify=_distributed(), where=self.where)
        self.level += 1
        return stats

    def observe(self, metrics: Mapping, step: int) -> None:
        """Records the monitored metric of an evaluation: the level's best value (its early
        stop, as the IMP driver's minimum validation loss) and the step it came at."""
        if self.monitor is None or self.monitor not in metrics:
            return
        value = float(metrics[self.monitor])
        if self.best is None or (value < self.best[0] if self.mode == "min"
                                 else value > self.best[0]):
            self.best = (value, int(step))

    def level_summary(self) -> Dict[str, float]:
        """The finished level's numbers at early stop (empty without a monitor or an
        evaluation), for the trackers; observe() then starts the next level afresh."""
        if self.best is None:
            return {}
        value, step = self.best
        return {f"{self.monitor}_at_early_stop": value, "early_stop_step": step}

    def track(self, log) -> None:
        """The finished level's scalars to a lth_fast.tracking.LevelLog, at its density."""
        layers = {k.split("/", 1)[1]: v for k, v in self.metrics().items()
                  if k.startswith("lth_density/")}
        log.level(self.level, self.pruner.density, {"ticket": self.level_summary()}, layers)

    def metrics(self) -> Dict[str, float]:
        """lth/level, lth/density and lth_density/<tensor> (fractions of the weights left)."""
        out = {"lth/level": float(self.level), "lth/density": self.pruner.density}
        for r in self.pruner.report():
            out[f"lth_density/{r['name']}"] = r["alive"] / r["total"] if r["total"] else 1.0
        return out

    # -- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain data: the level, the masks and rewind point as safetensors bytes, the
        schedules at the rewind point."""
        from safetensors.torch import save

        if self.pruner is None:
            return {} if self._pending is None else dict(self._pending)
        pruned = set(self.pruner.names)
        dense = {n: t.detach().cpu().contiguous() for n, t in self.pruner.rewind_state.items()
                 if n not in pruned}
        return {"level": self.level, "best": None if self.best is None else list(self.best),
                "ticket": ticket.to_bytes(self.pruner.mask_set),
                "dense": save(dense) if self.has_rewind_point else None,
                "schedules": [{"state": copy.deepcopy(p.state), "lrs": list(p.lrs)}
                              for p in self.schedules]}

    def load_state_dict(self, state: Mapping) -> None:
        """Loads a state_dict(); before setup() it waits for the model."""
        if not state:
            return
        if self.pruner is None:
            self._pending = dict(state)
            return
        from safetensors.torch import load

        loaded = ticket.from_bytes(state["ticket"], f"{self.where} checkpoint")
        if list(loaded.names) != list(self.pruner.names):
            raise ValueError(f"{self.where}: the checkpoint's masks are for "
                             f"{list(loaded.names)}, not for {list(self.pruner.names)}")
        self.pruner.load_state_dict(loaded.state_dict())
        if state.get("dense") is not None:
            self.pruner.load_rewind_state(load(state["dense"]))
        self.schedules = [SchedulePoint.from_state(saved["state"], saved["lrs"])
                          for saved in state.get("schedules", [])]
        self.level = int(state["level"])
        best = state.get("best")
        self.best = None if best is None else (float(best[0]), int(best[1]))


def _distributed() -> bool:
    """Under torch.distributed every rank prunes the same replicas: verify they agree."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1
