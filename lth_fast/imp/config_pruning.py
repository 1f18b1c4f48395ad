"""PruningConfig, the pruning group of IMPConfig (lth_fast.imp.config), with its own checks;
IMPConfig.check adds the checks between groups."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ..pruning.rule import PruneRule, check_rule, need

REWINDS = ("init", "iteration", "lr", "auto")


@dataclass
class PruningConfig:
    """How levels prune (lth_fast.pruning.rule), score (a criterion), rewind, and which
    branches train beside the ticket (lth_fast.imp.branches)."""
    levels: int = 14                  # pruning rounds after the dense level 0
    scope: str = "layer"              # layer | global | nm (n of every m input weights kept)
    rate: float = 0.2                 # fraction of the surviving weights pruned per level
    output_rate: Optional[float] = 0.1   # the classifier's rate (None: `rate`)
    layer_rates: Dict[str, float] = field(default_factory=dict)   # scope="layer" only
    ignore: Tuple[str, ...] = ()      # parameter names never pruned
    nm_n: int = 2                     # scope="nm": keep nm_n of every nm_m consecutive input
    nm_m: int = 4                     # weights (NVIDIA's 2:4 by default)
    criterion: str = "magnitude"      # what ranks the entries (lth_fast.imp.criteria)
    rewind: str = "init"              # init | iteration (to rewind_iteration) | lr (Renda et al.)
    rewind_iteration: int = 0
    # rewind "auto": the candidate iterations probed before level 1 (lth_fast.imp.rewind_probe)
    # and the stability threshold (None: a 2% test error barrier, or a language model's loss
    # barrier of 2% of its endpoint loss)
    rewind_candidates: Tuple[int, ...] = ()
    stable_below: Optional[float] = None
    # branches trained from each pruned level's masks beside the ticket (lth_fast.imp.branches)
    controls: Tuple[str, ...] = ("reinit", "random")
    # Early-Bird: level 0 stops once the masks level 1 would draw have settled (the largest
    # normalized Hamming distance from the newest of the last early_bird_window masks, drawn at
    # every evaluation, to the older ones is below early_bird); None trains level 0 to the end
    early_bird: Optional[float] = None
    early_bird_window: int = 5
    # pruning at initialisation (lth_fast.imp.branches.pai, lth_fast.imp.criteria): the pruned
    # levels its branches train at (empty: every one); what snip and grasp read (examples per
    # class, or a language model's first training batches); SynFlow's rounds and float64 pass
    pai_levels: Tuple[int, ...] = ()
    pai_examples: int = 10
    synflow_rounds: int = 100
    synflow_float64: bool = False

    def __post_init__(self) -> None:
        self.ignore = tuple(self.ignore)
        from .branches import BRANCHES
        # the ticket (the one branch that is no control) always runs: naming it changes nothing
        ticket = BRANCHES.names(control=False)
        self.controls = tuple(c for c in self.controls if c not in ticket)
        self.rewind_candidates = tuple(int(k) for k in self.rewind_candidates)
        self.pai_levels = tuple(int(v) for v in self.pai_levels)
        self.layer_rates = dict(self.layer_rates)

    @property
    def rule(self) -> PruneRule:
        return PruneRule(self.scope, self.rate, self.output_rate, self.layer_rates,
                         (self.nm_n, self.nm_m))

    def check(self) -> None:
        from .branches import BRANCHES
        from .criteria import CRITERIA

        check_rule(self.scope, self.rate, self.output_rate, self.layer_rates,
                   (self.nm_n, self.nm_m))
        need(self.scope == "nm" or (self.nm_n, self.nm_m) == (2, 4),
             f"{{0}}:{{1}} ({self.nm_n}:{self.nm_m}) applies to {{2}}='nm', not "
             f"{{2}}={self.scope!r}", "nm_n", "nm_m", "scope")
        # the N:M rule is reached in one step: a second level would prune nothing more
        need(self.scope != "nm" or self.nm_n < self.nm_m, f"{{0}}:{{1}} = {self.nm_n}:"
             f"{self.nm_m} keeps every weight: an N:M rule prunes with n < m", "nm_n", "nm_m")
        need(self.scope != "nm" or not self.layer_rates, "{0} apply to {1}='layer', not 'nm'",
             "layer_rates", "scope")
        need(self.early_bird is not None or self.early_bird_window == 5,
             "{0} sizes the {1} monitor, which is off", "early_bird_window", "early_bird")
        need(self.scope != "nm" or self.levels <= 1, f"{{0}} 'nm' reaches its {self.nm_n}:"
             f"{self.nm_m} pattern in one level; give {{1}}=1, not {self.levels}",
             "scope", "levels")
        need(self.rewind in REWINDS, f"{{0}} must be one of {REWINDS}, got {self.rewind!r}",
             "rewind")
        for name in ("levels", "rewind_iteration"):
            need(getattr(self, name) >= 0, f"{{0}} must be >= 0, got {getattr(self, name)}", name)
        need(self.rewind in ("iteration", "lr") or self.rewind_iteration == 0,
             f"{{0}}={self.rewind_iteration} needs {{1}}='iteration' or 'lr'",
             "rewind_iteration", "rewind")
        self._check_auto()
        CRITERIA.check(self.criterion, "criterion")
        for name in self.controls:
            BRANCHES.check(name, "controls", control=True)
        for name in self.controls:
            BRANCHES[name].check(self)
        need(self.early_bird is None or 0.0 < self.early_bird <= 1.0,
             f"{{0}} (eps) must be a distance in (0, 1], got {self.early_bird}", "early_bird")
        need(self.early_bird_window >= 2, f"{{0}} must be >= 2, got {self.early_bird_window}",
             "early_bird_window")
        self._check_pai(BRANCHES, CRITERIA)

    def _check_pai(self, branches, criteria) -> None:
        """The pruning-at-init options: in range, and read by a branch or criterion the run
        uses (a Branch's `criterion`, a Criterion's `reads`)."""
        pai = [branches[c].criterion for c in self.controls if branches[c].criterion]
        need(all(1 <= v <= self.levels for v in self.pai_levels), f"{{0}} must be pruned "
             f"levels in 1..{{1}} ({self.levels}), got {list(self.pai_levels)}", "pai_levels",
             "levels")
        need(not self.pai_levels or pai, "{0} chooses the levels of the pruning-at-init "
             "branches, and {1} names none", "pai_levels", "controls")
        read = {r for c in pai + [self.criterion] for r in criteria[c].reads}
        default = PruningConfig()
        for name, option in (("pai_examples", "examples"), ("synflow_rounds", "rounds"),
                             ("synflow_float64", "float64")):
            need(getattr(self, name) == getattr(default, name) or option in read,
                 f"{{0}} applies to a criterion that reads it; neither {{1}} nor {{2}} "
                 f"uses one", name, "criterion", "controls")
        for name in ("pai_examples", "synflow_rounds"):
            need(getattr(self, name) >= 1, f"{{0}} must be >= 1, got {getattr(self, name)}",
                 name)

    def _check_auto(self) -> None:
        auto, ks = self.rewind == "auto", self.rewind_candidates
        need(auto or not ks, "{0} apply to {1}='auto'", "rewind_candidates", "rewind")
        need(not auto or ks, "{0}='auto' chooses among {1}: give them", "rewind",
             "rewind_candidates")
        need(all(k >= 0 for k in ks) and len(set(ks)) == len(ks),
             f"{{0}} must be distinct iterations >= 0, got {list(ks)}", "rewind_candidates")
        need(auto or self.stable_below is None, "{0} is the threshold of {1}='auto'",
             "stable_below", "rewind")
        need(self.stable_below is None or self.stable_below > 0,
             f"{{0}} must be > 0, got {self.stable_below}", "stable_below")
        need(not auto or self.early_bird is None, "{0} may stop level 0 before {1}='auto' "
             "has kept its candidate points", "early_bird", "rewind")
