"""Which tickets match the dense network, and when IMP may stop.

A level's result is its ticket's test accuracy at early stop (a language model: its test loss at
early stop). A ticket *matches* the dense network (level 0) under two definitions:
  within DELTA: accuracy >= dense - DELTA points (a language model: loss <= dense * (1 +
                DELTA / 100), DELTA in percent of the dense loss);
  at or above dense: accuracy >= dense (loss <= dense).
With several seeds both sides are the means over the seeds, each shown with its spread (the
sample standard deviation). One seed has no spread over seeds; its accuracies then carry the
test set's own sampling error (binomial, sqrt(p (1 - p) / n_test)), named as such, and a
language model's loss carries none: it is reported as such, never as a bare match.

`lth-fast imp --stop-below DELTA` stops IMP after the first pruned level whose ticket falls more
than DELTA below dense (the rule above, on the means)."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import List, Optional, Sequence

WITHIN, AT_DENSE = "within", "at_dense"


@dataclass(frozen=True)
class LevelResult:
    """One level over the seeds: the ticket's result (mean, sample std over seeds or None for one
    seed), the weights remaining (%), and the standard error of one seed's test accuracy."""
    level: int
    remaining: float
    mean: float
    std: Optional[float]
    seeds: int
    text: bool
    sampling_error: Optional[float] = None

    def shown(self) -> str:
        """The result with its spread, in points of accuracy or nats."""
        if self.text:
            value = f"test loss {self.mean:.4f} nats/char"
            spread = (f" ± {self.std:.4f} (std over {self.seeds} seeds)" if self.std is not None
                      else " (1 seed: no spread measured; run --seeds N for one)")
        else:
            value = f"test accuracy {100 * self.mean:.2f}%"
            if self.std is not None:
                spread = f" ± {100 * self.std:.2f} (std over {self.seeds} seeds)"
            elif self.sampling_error is not None:
                spread = (f" ± {100 * self.sampling_error:.2f} (1 seed: the test set's sampling "
                          f"error only, not a spread over seeds)")
            else:
                spread = " (1 seed: no spread measured; run --seeds N for one)"
        return value + spread


def level_results(runs: Sequence[Sequence[dict]], test_size: Optional[int] = None
                  ) -> List[LevelResult]:
    """Per level finished in every run (runs: each run's summary rows, lth_fast.imp.report),
    the ticket's result over the runs. test_size gives one seed its sampling error."""
    text = any("ticket_test_loss_at_early_stop" in r for run in runs for r in run)
    key = "ticket_test_loss_at_early_stop" if text else "ticket_test_accuracy_at_early_stop"
    out = []
    for i in range(min(len(run) for run in runs) if runs else 0):
        vals = [float(run[i][key]) for run in runs]
        mean = statistics.fmean(vals)
        std = statistics.stdev(vals) if len(vals) > 1 else None
        err = (math.sqrt(max(mean * (1 - mean), 0.0) / test_size)
               if not text and std is None and test_size else None)
        out.append(LevelResult(int(runs[0][i]["level"]), float(runs[0][i]["remaining"]), mean,
                               std, len(vals), text, err))
    return out


def matches(result: LevelResult, dense: LevelResult, how: str, delta: float) -> bool:
    """Whether a level's ticket matches the dense network under definition `how`."""
    if result.text:
        bound = dense.mean * (1 + delta / 100) if how == WITHIN else dense.mean
        return result.mean <= bound
    bound = dense.mean - delta / 100 if how == WITHIN else dense.mean
    return result.mean >= bound


def sparsest_matching(results: Sequence[LevelResult], how: str, delta: float
                      ) -> Optional[LevelResult]:
    """The pruned level with the fewest weights left whose ticket matches, or None."""
    if not results or results[0].level != 0:
        return None
    dense = results[0]
    found = [r for r in results[1:] if matches(r, dense, how, delta)]
    return min(found, key=lambda r: r.remaining) if found else None


def first_below(results: Sequence[LevelResult], delta: float) -> Optional[LevelResult]:
    """The first pruned level whose ticket falls more than DELTA below dense (the stop rule)."""
    if not results or results[0].level != 0:
        return None
    return next((r for r in results[1:] if not matches(r, results[0], WITHIN, delta)), None)


def describe(results: Sequence[LevelResult], delta: float) -> List[str]:
    """Lines naming the sparsest matching ticket under both definitions, with spreads."""
    if not results or results[0].level != 0:
        return ["no dense level: nothing to match"]
    dense = results[0]
    if dense.text:  # a loss: lower is better
        labels = (f"loss within {delta:g}% of dense", "loss at or below dense")
    else:
        labels = (f"within {delta:g} point{'' if delta == 1 else 's'} of dense",
                  "at or above dense")
    lines = [f"dense network: {dense.shown()}"]
    for how, label in zip((WITHIN, AT_DENSE), labels):
        r = sparsest_matching(results, how, delta)
        lines.append(f"sparsest matching ticket ({label}): " + (
            "none" if r is None else
            f"level {r.level}, {r.remaining:.1f}% of weights left, {r.shown()}"))
    return lines


__all__ = ["LevelResult", "level_results", "matches", "sparsest_matching", "first_below",
           "describe", "WITHIN", "AT_DENSE"]
