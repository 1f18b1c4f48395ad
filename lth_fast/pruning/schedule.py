"""The learning-rate schedule at a rewind point: what Pruner.snapshot(scheduler=...) records and
Pruner.rewind(scheduler=...) puts back, so a rewound ticket replays the schedule from there
(iteration 0, or k for late rewinding) instead of going on from where training left it."""
from __future__ import annotations

import copy
from typing import List

import torch


def _check_scheduler(scheduler, where: str) -> None:
    if not (callable(getattr(scheduler, "state_dict", None)) and
            callable(getattr(scheduler, "load_state_dict", None)) and
            isinstance(getattr(scheduler, "optimizer", None), torch.optim.Optimizer)):
        raise TypeError(f"Pruner.{where}: scheduler must be a torch.optim.lr_scheduler "
                        f"scheduler (with .optimizer, state_dict and load_state_dict), got "
                        f"{type(scheduler).__name__}")


class SchedulePoint:
    """A scheduler's state_dict and its optimizer's param-group lrs, copied at one moment."""

    def __init__(self, scheduler) -> None:
        _check_scheduler(scheduler, "snapshot")
        self.kind = type(scheduler)
        self.state = copy.deepcopy(scheduler.state_dict())
        self.lrs: List[float] = [g["lr"] for g in scheduler.optimizer.param_groups]

    @classmethod
    def from_state(cls, state: dict, lrs: List[float]) -> "SchedulePoint":
        """A point read back from a checkpoint (state_dict and lrs as recorded); restore()
        puts it into a scheduler of the recorded kind."""
        point = cls.__new__(cls)
        point.kind, point.state, point.lrs = None, copy.deepcopy(state), list(lrs)
        return point

    def check(self, scheduler, optimizer) -> None:
        """Raises unless restore(scheduler) fits (run before anything is rewound)."""
        _check_scheduler(scheduler, "rewind")
        if type(scheduler) is not self.kind:
            raise TypeError(f"Pruner.rewind: the snapshot recorded a {self.kind.__name__}, not a "
                            f"{type(scheduler).__name__}")
        if optimizer is not None and scheduler.optimizer is not optimizer:
            raise ValueError("Pruner.rewind: the scheduler steps another optimizer than the one "
                             "given")
        groups = len(scheduler.optimizer.param_groups)
        if groups != len(self.lrs):
            raise ValueError(f"Pruner.rewind: the scheduler's optimizer has {groups} param "
                             f"groups; the snapshot recorded {len(self.lrs)}")

    def restore(self, scheduler) -> None:
        scheduler.load_state_dict(copy.deepcopy(self.state))
        for group, lr in zip(scheduler.optimizer.param_groups, self.lrs):
            group["lr"] = lr
