"""run_and_compare: the fast prune_ and the pure-PyTorch reference (lth_fast.reference, the
executable spec) on clones of the same inputs, checking masks bit for bit, the returned
PruneStats, and invariants that follow from docs/semantics.md ("Magnitude selection") without
either implementation (weights untouched, dead entries stay dead, exactly k pruned, pruned |w|
<= kept |w|, ties cut by position); nm_random_weights and nm_inputs, the inputs of the N:M tests."""
from __future__ import annotations

import os

import pytest
import torch

import lth_fast
from lth_fast import reference

from tests.helpers.ops import bits
from tests.helpers.targets import ISA_ENV



def flat_cpu(tensors):
    if not tensors:
        return torch.empty(0)
    return torch.cat([t.detach().reshape(-1).cpu() for t in tensors])


def check_selection(weights, before, after, k, scope):
    """Invariants of docs/semantics.md ("Magnitude selection"), checked on CPU without either
    implementation."""
    groups = [[i] for i in range(len(weights))] if scope == "layer" else [list(range(len(weights)))]
    ks = k if isinstance(k, (list, tuple)) else [k] * len(groups)
    for g, idx in enumerate(groups):
        if not idx:
            continue
        w = flat_cpu([weights[i] for i in idx]).double().abs()
        b = flat_cpu([before[i] for i in idx])
        a = flat_cpu([after[i] for i in idx])
        assert not (a & ~b).any(), f"group {g}: a dead entry came back to life"
        pruned = b & ~a
        assert int(pruned.sum()) == ks[g], f"group {g}: pruned {int(pruned.sum())}, want {ks[g]}"
        if ks[g] == 0 or not a.any():
            continue
        t = w[pruned].max()
        assert t <= w[a].min(), f"group {g}: pruned |w| {float(t)} above a kept |w|"
        tie_pos = torch.nonzero(b & (w == t)).flatten()
        tie_pruned = pruned[tie_pos]
        # the pruned ties are a prefix (by position) of the alive ties
        n = int(tie_pruned.sum())
        assert tie_pruned[:n].all() and not tie_pruned[n:].any(), f"group {g}: ties not by position"


def expected_k(amount, alive):
    return amount if isinstance(amount, int) else round(amount * alive)


def assert_masks_equal(got, ref, context) -> None:
    """Each mask equals the reference's, bit for bit; a difference fails naming the list
    index, its first flat positions, context(i) and the CPU ISA."""
    for i, (g, r) in enumerate(zip(got, ref)):
        assert g.dtype == torch.bool and g.shape == r.shape
        if not torch.equal(g, r):
            diff = torch.nonzero((g != r).reshape(-1)).flatten()[:10].tolist()
            pytest.fail(f"masks[{i}] differs from the reference at flat positions {diff} "
                        f"({context(i)}, isa={os.environ.get(ISA_ENV)})")


def run_and_compare(weights, masks, amount, scope="global", device="cpu"):
    """Runs fast (on `device`) and reference (on CPU) on clones; checks everything; returns
    (fast masks on CPU, stats)."""
    weights = [w.cpu() for w in weights]
    masks = [m.cpu() for m in masks]
    w_before = [w.clone() for w in weights]
    ref_masks = [m.clone() for m in masks]
    ref_stats = reference.prune_([w.clone() for w in weights], ref_masks, amount, scope=scope)

    dev_w = [w.to(device) for w in weights]
    dev_m = [m.clone().to(device) for m in masks]
    stats = lth_fast.prune_(dev_w, dev_m, amount, scope=scope)
    got = [m.cpu() for m in dev_m]

    for i, (w, w0) in enumerate(zip(dev_w, w_before)):
        assert torch.equal(bits(w.cpu()), bits(w0)), f"weights[{i}] was modified"
    assert_masks_equal(got, ref_masks, lambda i: f"amount={amount!r}, scope={scope}, "
                                                 f"dtype={weights[i].dtype}, device={device}")
    assert stats == ref_stats, f"stats {stats} != reference {ref_stats}"

    # The stats must also describe what happened to the masks.
    alive = [int(m.sum()) for m in masks]
    if scope == "layer":
        amounts = amount if isinstance(amount, (list, tuple)) else [amount] * len(masks)
        if len(amounts) == 1:
            amounts = amounts * len(masks)
        ks = [expected_k(a, n) for a, n in zip(amounts, alive)]
        assert len(stats.layers) == len(masks)
        for i, row in enumerate(stats.layers):
            assert (row.alive_before, row.pruned) == (alive[i], ks[i]), f"layers[{i}]"
            newly = masks[i].reshape(-1) & ~got[i].reshape(-1)
            want = float(weights[i].reshape(-1)[newly].double().abs().max()) if ks[i] else None
            assert row.threshold == want, f"layers[{i}].threshold {row.threshold} != {want}"
        assert stats.pruned == sum(ks)
    else:
        ks = expected_k(amount, sum(alive))
        assert stats.pruned == ks
        if ks:
            w = flat_cpu(weights).double().abs()
            newly = flat_cpu(masks) & ~flat_cpu(got)
            assert stats.threshold == float(w[newly].max())
        else:
            assert stats.threshold is None
    assert stats.alive_before == sum(alive)
    assert stats.alive_after == sum(int(m.sum()) for m in got)
    check_selection(weights, masks, got, ks, scope)

    if device != "cpu":  # the CUDA masks must equal the CPU fast path bit for bit
        cpu_m = [m.clone() for m in masks]
        lth_fast.prune_(weights, cpu_m, amount, scope=scope)
        for i, (m, c) in enumerate(zip(got, cpu_m)):
            assert torch.equal(m, c), f"masks[{i}]: {device} differs from cpu"
    return got, stats


def nm_random_weights(shapes, dtype, gen, kind="normal"):
    """Float64 draws scaled by a random power of two, cast to dtype (kind="ties": few distinct
    magnitudes, both zeros and both infinities)."""
    out = []
    for s in shapes:
        if kind == "ties":
            vals = torch.tensor([0.0, -0.0, 1.0, -1.0, 2.0, -2.0, float("inf"), -float("inf")],
                                dtype=torch.float64)
            x = vals[torch.randint(0, len(vals), s, generator=gen)]
        else:
            x = torch.randn(s, generator=gen, dtype=torch.float64)
            x *= 2.0 ** float(torch.randint(-6, 7, (1,), generator=gen))
        out.append(x.to(dtype))
    return out


def nm_inputs(gen):
    """float32 weights of a Linear, a conv and a 1-D shape, N:M-groupable by 2 and 4, and masks
    with about 80% alive."""
    weights = nm_random_weights([(3, 8), (2, 4, 3, 3), (12,)], torch.float32, gen)
    return weights, [torch.rand(w.shape, generator=gen) < 0.8 for w in weights]
