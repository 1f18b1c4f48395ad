"""Run by `make wheel` in a fresh virtualenv that holds only torch and the built wheel (and
the wheel's own dependencies), from outside the source tree: the installed package imports,
its compiled extension loads, and prune_ gives the reference's masks."""
import os
import sys

import torch

import lth_fast
from lth_fast import reference

here = os.path.dirname(os.path.abspath(lth_fast.__file__))
assert "site-packages" in here, f"imported lth_fast from {here}, not from the installed wheel"
gen = torch.Generator().manual_seed(0)
weights = [torch.randn(1000, generator=gen), torch.randn(37, 11, generator=gen)]
masks = [torch.rand(w.shape, generator=gen) < 0.8 for w in weights]
want = [m.clone() for m in masks]
stats = lth_fast.prune_(weights, masks, 0.3)
reference.prune_(weights, want, 0.3)
assert all(torch.equal(a, b) for a, b in zip(masks, want)), "prune_ differs from the reference"
print(f"wheel smoke test: lth_fast {lth_fast.__version__} with torch {torch.__version__}, "
      f"cpu_isa={lth_fast.cpu_isa()}, pruned {stats.pruned} of {stats.alive_before}; "
      f"python {sys.version.split()[0]}")
