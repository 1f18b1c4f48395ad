"""magnitude_init: |w| of the network being pruned at initialisation, one shot: the baseline
Frankle, Dziugaite, Roy & Carbin (ICLR 2021) compare the pruning-at-init methods with. As a
criterion it is `magnitude` (the weights themselves are ranked, no copy); its own name lets the
pruning-at-init branches (lth_fast.imp.branches.pai) train its masks and their ablations."""
from __future__ import annotations

from .base import CRITERIA, Criterion

CRITERIA.register(Criterion("magnitude_init", scores=lambda ctx: None))
