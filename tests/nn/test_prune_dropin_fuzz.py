"""Random sequences of pruning calls, each run with lth_fast.nn.utils.prune on one model and with
torch.nn.utils.prune on its twin: after every call both models hold the same state (masks,
weights, buffers, hook types), or both calls raised the same error type. Scores are tie-free,
and random draws nearly so (not drawn in 16-bit dtypes), so torch's order of ties never
decides. A few hundred derandomized sequences in CI; 10,000 with
LTH_FAST_FUZZ=long (tests/test_fuzz.py)."""
from __future__ import annotations

import torch
import torch.nn.utils.prune as tp
from hypothesis import strategies as st

import lth_fast.nn.utils.prune as lp

from tests.nn.test_prune_dropin import DTYPES, assert_same_model, both, distinct_, targets
from tests.test_fuzz import run_fuzz

KINDS = ["global_l1", "global_random", "global_scores", "local_l1", "local_random",
         "local_scores", "ln_structured", "torch_global"]

amounts = st.one_of(st.floats(0.0, 1.0), st.integers(0, 60), st.sampled_from([1.5, -1]))
steps = st.lists(st.tuples(st.sampled_from(KINDS), amounts, st.integers(0, 3),
                           st.integers(0, 2**16)), min_size=1, max_size=5)
cases = st.tuples(st.sampled_from(DTYPES), steps)


def call(mod, model, kind, amount, which, seed):
    params = targets(model)
    module, name = params[which]
    if kind.startswith("global") or kind == "torch_global":
        scores = None
        if kind == "global_scores":
            tensors = [torch.empty_like(getattr(m, n)) for m, n in params]
            distinct_(tensors, torch.Generator().manual_seed(seed), scale=0.25)
            scores = dict(zip(params, tensors))
        impl = tp if kind == "torch_global" else mod
        method = impl.RandomUnstructured if kind == "global_random" else impl.L1Unstructured
        return mod.global_unstructured(params, pruning_method=method, amount=amount,
                                       importance_scores=scores)
    if kind == "local_l1":
        return mod.l1_unstructured(module, name, amount=amount)
    if kind == "local_scores":
        scores = torch.empty_like(getattr(module, name))
        distinct_([scores], torch.Generator().manual_seed(seed), scale=0.25)
        return mod.l1_unstructured(module, name, amount=amount, importance_scores=scores)
    if kind == "local_random":
        return mod.random_unstructured(module, name, amount=amount)
    if getattr(module, name).dim() < 2:
        module, name = params[0]
    return mod.ln_structured(module, name, amount=amount, n=1, dim=0)


def check(case, tally):
    dtype, sequence = case
    if dtype in (torch.float16, torch.bfloat16):
        # their draws of torch.rand take 2^11 or 2^8 values: ties, which torch orders its own way
        sequence = [step for step in sequence if "random" not in step[0]]
    ours, theirs, _ = both("cpu", dtype)
    for kind, amount, which, seed in sequence:
        outcomes = []
        for mod, model in ((lp, ours), (tp, theirs)):
            torch.manual_seed(seed)
            try:
                call(mod, model, kind, amount, which, seed)
                outcomes.append(None)
            except (ValueError, TypeError, IndexError, RuntimeError) as e:
                outcomes.append(type(e))
        assert outcomes[0] == outcomes[1], (kind, amount, outcomes)
        assert_same_model(ours, theirs)
        key = "error" if outcomes[0] else kind
        tally[key] = tally.get(key, 0) + 1


def test_fuzz_against_torch():
    run_fuzz(cases, check, "lth_fast.nn.utils.prune against torch.nn.utils.prune")
