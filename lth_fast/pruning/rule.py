"""How one IMP level prunes, checked in one place for every caller: the IMP driver's config
(lth_fast.imp.config) and the Lightning / Hugging Face callbacks (lth_fast.integrations.levels)
both validate through check_rule and prune through PruneRule.args, so they support the same
scopes, N:M included.

A ConfigError names the fields at fault by placeholder, so each caller shows them in its own
terms: the config as `pruning.rate`, the command line as `--rate`, a callback as `rate`."""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Tuple

SCOPES = ("layer", "global", "nm")
NM_LIMIT = 64  # the largest group the N:M op takes (docs/semantics.md, "N:M selection")


class ConfigError(ValueError):
    """A setting that is wrong or does not apply. `template` names its fields as {0}, {1}, ...;
    str() shows them as given (`fields`), render(names) as a caller calls them."""

    def __init__(self, template: str, *fields: str, prefix: str = "") -> None:
        self.template, self.fields, self.prefix = template, tuple(fields), prefix
        super().__init__(self.render())

    def render(self, names: Optional[Mapping[str, str]] = None) -> str:
        """The message with each field shown as names[field] (default: the field itself)."""
        shown = [(names or {}).get(f, f) for f in self.fields]
        return self.prefix + self.template.format(*shown)

    def within(self, group: str, prefix: str) -> "ConfigError":
        """The same error with its fields qualified by `group` (e.g. "pruning.rate")."""
        return ConfigError(self.template, *(f"{group}.{f}" if "." not in f else f
                                           for f in self.fields), prefix=prefix)


def need(ok: bool, template: str, *fields: str) -> None:
    """Raises ConfigError(template, *fields) unless ok."""
    if not ok:
        raise ConfigError(template, *fields)


def _is_rate(r) -> bool:
    return isinstance(r, numbers.Real) and not isinstance(r, bool) and 0.0 <= r < 1.0


def check_rule(scope: str, rate: float, output_rate: Optional[float],
               layer_rates: Mapping[str, float], nm: Tuple[int, int]) -> None:
    """The checks every level rule passes; field names as in PruneRule."""
    need(scope in SCOPES, "{0} must be one of %s, got %r" % (SCOPES, scope), "scope")
    need(_is_rate(rate), f"{{0}} must be in [0, 1), got {rate!r}", "rate")
    need(output_rate is None or _is_rate(output_rate),
         f"{{0}} must be in [0, 1) or None, got {output_rate!r}", "output_rate")
    for name, r in layer_rates.items():
        need(_is_rate(r), f"{{0}}[{name!r}] must be in [0, 1), got {r!r}", "layer_rates")
    need(scope != "global" or (not layer_rates and output_rate is None),
         "per-layer rates ({0}, {1}) need scope='layer'; a global ranking takes one rate (set "
         "{0} to None)", "output_rate", "layer_rates")
    n, m = nm
    need(all(isinstance(v, int) and not isinstance(v, bool) for v in nm) and
         1 <= n <= m <= NM_LIMIT, f"N:M ({{0}}:{{1}}) needs 1 <= n <= m <= {NM_LIMIT}, got "
         f"{n}:{m}", "nm_n", "nm_m")


@dataclass(frozen=True)
class PruneRule:
    """scope: "layer" (each tensor ranked alone, at `rate`, the output layer at `output_rate`,
    any tensor named in `layer_rates` at its own rate), "global" (one ranking at `rate`) or
    "nm" (keep nm[0] of every nm[1] consecutive input weights; no rate)."""
    scope: str = "layer"
    rate: float = 0.2
    output_rate: Optional[float] = None
    layer_rates: Mapping[str, float] = field(default_factory=dict)
    nm: Tuple[int, int] = (2, 4)

    def __post_init__(self) -> None:
        check_rule(self.scope, self.rate, self.output_rate, dict(self.layer_rates), self.nm)

    def rates(self, names: Sequence[str], output: Optional[str]) -> Optional[Dict[str, float]]:
        """Per-tensor rates for scope "layer" (`output` is the classifier's weight, or None);
        None for the other scopes. A name in layer_rates that is not pruned is an error."""
        unknown = sorted(set(self.layer_rates) - set(names))
        need(not unknown, f"{{0}} names {unknown} are not pruned tensors; they are "
                          f"{list(names)}", "layer_rates")
        if self.scope != "layer":
            return None
        rates = {n: self.rate for n in names}
        if self.output_rate is not None and output in rates:
            rates[output] = self.output_rate
        rates.update(self.layer_rates)
        return rates

    def args(self, rates: Optional[Mapping[str, float]]) -> dict:
        """The keywords of Pruner.prune / Pruner.draw for this rule (rates: from rates())."""
        if self.scope == "nm":
            from ..ops import NM
            return dict(amount=None, scope=NM(*self.nm))
        return dict(amount=self.rate, scope=self.scope, per_layer=rates)


__all__ = ["ConfigError", "PruneRule", "SCOPES", "check_rule", "need"]
