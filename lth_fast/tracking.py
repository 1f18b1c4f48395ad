"""Per-level scalars of IMP for TensorBoard, with the density as the x-axis: what `lth-fast imp
--tensorboard DIR` and the training-framework callbacks write.

TensorBoard's x-axis is an integer step, so the step is the density of the pruned weights in
basis points: 10000 for the dense network, 2097 for 20.97% left. Each level's scalars sit at
its density: imp/level, imp/density, every branch's numbers at early stop
(e.g. imp/ticket/test_accuracy_at_early_stop, imp/ticket/early_stop_iteration, imp/reinit/...),
and imp_density/<parameter> for each pruned tensor (the fraction of it left). The prefix keeps
them apart from scalars logged against training steps (the callbacks' lth/...).

It writes through torch.utils.tensorboard, which needs only the `tensorboard` package
(pip install 'lth_fast[tensorboard]'): nothing imports it until a log is asked for."""
from __future__ import annotations

import math
from typing import Mapping, Optional


def density_step(density: float) -> int:
    """The TensorBoard step of a density in [0, 1]: basis points."""
    return int(round(density * 10000))


def summary_writer(log_dir: str, what: str = "--tensorboard"):
    """torch.utils.tensorboard.SummaryWriter(log_dir), or a one-line error naming the extra."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ModuleNotFoundError(f"{what} writes through torch.utils.tensorboard, which needs "
                                  f"the tensorboard package: pip install "
                                  f"'lth_fast[tensorboard]'", name="tensorboard") from None
    return SummaryWriter(log_dir)


class LevelLog:
    """Writes one IMP level at a time (level(...)); writer: a SummaryWriter, or anything with
    add_scalar(tag, value, step) (a framework's own logger adapter)."""

    def __init__(self, writer) -> None:
        self.writer = writer

    @classmethod
    def tensorboard(cls, log_dir: str, what: str = "--tensorboard") -> "LevelLog":
        return cls(summary_writer(log_dir, what))

    def level(self, level: int, density: float,
              branches: Optional[Mapping[str, Mapping[str, float]]] = None,
              layers: Optional[Mapping[str, float]] = None) -> None:
        """branches: {branch: {name: number}}; layers: {parameter: fraction left in [0, 1]}."""
        step = density_step(density)
        add = self.writer.add_scalar
        add("imp/level", level, step)
        add("imp/density", density, step)
        for branch, numbers in (branches or {}).items():
            for name, value in numbers.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) \
                        and math.isfinite(value):
                    add(f"imp/{branch}/{name}", value, step)
        for name, left in (layers or {}).items():
            add(f"imp_density/{name}", left, step)
        flush = getattr(self.writer, "flush", None)
        if flush is not None:
            flush()

    def close(self) -> None:
        close = getattr(self.writer, "close", None)
        if close is not None:
            close()
