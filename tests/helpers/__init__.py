"""What the tests share, one module per subject (imported as `tests.helpers.<module>`):

  targets     dtypes, CPU instruction sets and devices the op tests run on (isa_env, use_isa,
              SUPPORTED_ISAS, needs_cuda)
  ops         bitwise and ulp comparisons, random masks, unaligned views, inputs of the
              update ops, the one-thread fixture
  prune       run_and_compare: the fast prune_ against the reference, with the selection's
              invariants checked independently of both
  training    small models, data and lockstep checks for the optimizer and Pruner tests
  imp         a learnable MNIST stand-in and tiny IMP configs; killing a run mid-level
  export      finished LeNet/GPT runs and raw safetensors edits for the shipping tests
  lightning   a tiny LightningModule, its data and trainer
  data_files  dataset files in the formats lth_fast.data reads
  dist        run_ranks (real gloo processes); dist_cases: sharded inputs and their oracle;
              dist_workers: what each rank runs (importable by name, as spawn needs)
  readme      the code examples of README.md and docs/*.md (tests/test_docs.py runs them)

ROOT is the repository root (the working directory of subprocesses, and their PYTHONPATH).

Scripts run as subprocesses live in tests/scripts/."""
from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo
