"""magnitude: |w|, the lottery-ticket criterion (Frankle & Carbin 2019). prune_ ranks the
magnitudes of the tensors it is given, so the weights themselves are the scores: no copy."""
from __future__ import annotations

from .base import CRITERIA, Criterion

CRITERIA.register(Criterion("magnitude", scores=lambda ctx: None))
