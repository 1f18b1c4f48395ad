"""prune_(scope=NM(n, m)) fast == reference (docs/semantics.md, "N:M selection"): every device,
ISA and dtype; Linear-, conv- and 1-D-shaped tensors; ties, ±0.0 and inf; partly pruned masks;
the vector paths' tails; many tensors; views inside poisoned buffers; the reference (which
keeps the op's scope="nm", n=, m=) itself against a literal reading of the rule; the Pruner and
the distributed front door. Bad input: test_prune_nm_errors.py; NM itself and the deprecated
spelling: test_nm.py."""
from __future__ import annotations

import pytest
import torch

import lth_fast
from lth_fast import NM, reference

from tests.helpers.ops import bits
from tests.helpers.prune import assert_masks_equal, nm_inputs, nm_random_weights
from tests.helpers.targets import DTYPES, needs_cuda

RULES = [(2, 4), (1, 4), (3, 4), (4, 4), (1, 2), (4, 8), (2, 8), (1, 1), (2, 3), (5, 16),
         (7, 64)]


def rule_id(rule):
    return f"{rule[0]}of{rule[1]}"


def shapes_for(m, gen):
    """A Linear weight, a conv weight (groups along its input channels, kh * kw apart), a 1-D
    tensor, a 3-D one, and a Linear weight long enough for the vector loops' tails."""
    def r(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))
    return [(r(1, 9), m * r(1, 6)), (r(1, 5), m * r(1, 3), 3, 3), (m * r(1, 9),),
            (r(1, 3), m * r(1, 2), r(1, 7)), (3, m * 37)]


def literal_rule(w, mask, n, m):
    """The rule read literally, one group at a time in Python (slow; small tensors only)."""
    shape = tuple(w.shape)
    if len(shape) >= 2:
        outer, channels, inner = shape[0], shape[1], 1
        for d in shape[2:]:
            inner *= d
    else:
        outer, channels, inner = 1, (shape[0] if shape else 1), 1
    mags = w.double().abs().reshape(-1).tolist()
    alive = mask.reshape(-1).tolist()
    keep = list(alive)
    for o in range(outer):
        for g in range(channels // m):
            for s in range(inner):
                idx = [(o * channels + g * m + j) * inner + s for j in range(m)]
                for i in idx:
                    if not alive[i]:
                        continue
                    beaten = sum(1 for j in idx if alive[j] and (
                        mags[j] > mags[i] or (mags[j] == mags[i] and j < i)))
                    keep[i] = beaten < n
    return torch.tensor(keep, dtype=torch.bool).reshape(mask.shape)


def run_and_compare(weights, masks, n, m, device="cpu"):
    """Fast (on `device`) and reference (on CPU) on copies; masks bit for bit, stats, weights
    untouched, and the rule's invariants. Returns (fast masks on CPU, stats)."""
    w_before = [bits(w).clone() for w in weights]
    ref_masks = [mk.clone() for mk in masks]
    ref = reference.prune_(weights, ref_masks, scope="nm", n=n, m=m)
    dev_w = [w.to(device) for w in weights]
    dev_m = [mk.clone().to(device) for mk in masks]
    stats = lth_fast.prune_(dev_w, dev_m, scope=NM(n, m))
    got = [mk.cpu() for mk in dev_m]
    for i, (w, w0) in enumerate(zip(dev_w, w_before)):
        assert torch.equal(bits(w.cpu()), w0), f"weights[{i}] was modified"
    assert_masks_equal(got, ref_masks, lambda i: f"{n}:{m}, shape {list(got[i].shape)}, "
                                                 f"{weights[i].dtype}, {device}")
    assert stats == ref, f"stats {stats} != reference {ref}"
    assert len(stats.layers) == len(masks) and stats.threshold is None
    for i, (before, after, row) in enumerate(zip(masks, got, stats.layers)):
        assert not (after & ~before).any(), f"masks[{i}]: a dead entry came back"
        assert row.alive_before == int(before.sum())
        assert row.pruned == int(before.sum()) - int(after.sum())
        assert row.threshold is None
    return got, stats


@pytest.mark.parametrize("rule", RULES, ids=rule_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_random_matches_reference(target, dtype, rule, gen):
    n, m = rule
    for alive_p in (1.0, 0.7, 0.3):
        shapes = shapes_for(m, gen)
        weights = nm_random_weights(shapes, dtype, gen)
        masks = [torch.rand(s, generator=gen) < alive_p for s in shapes]
        got, stats = run_and_compare(weights, masks, n, m, target)
        if alive_p == 1.0:  # fresh masks: exactly n of every m kept
            for i, (w, g) in enumerate(zip(weights, got)):
                assert int(g.sum()) * m == w.numel() * n, f"masks[{i}] keeps {int(g.sum())}"


@pytest.mark.parametrize("rule", [(2, 4), (1, 4), (3, 4), (1, 2), (2, 3), (4, 8)], ids=rule_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_ties_zeros_and_infinities(target, dtype, rule, gen):
    """Few distinct magnitudes: most groups are decided by position."""
    n, m = rule
    for alive_p in (1.0, 0.6):
        shapes = shapes_for(m, gen)
        weights = nm_random_weights(shapes, dtype, gen, kind="ties")
        masks = [torch.rand(s, generator=gen) < alive_p for s in shapes]
        run_and_compare(weights, masks, n, m, target)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_vector_tails_and_parallel_runs(target, dtype, gen):
    """2:4 on contiguous rows (the vector loops) of every length mod 16, and tensors large
    enough to be cut into runs for several threads."""
    shapes = [(1, 4 * g) for g in range(1, 20)] + [(700, 512), (3, 4 * 100_003)]
    weights = nm_random_weights(shapes, dtype, gen)
    masks = [torch.rand(s, generator=gen) < 0.9 for s in shapes]
    run_and_compare(weights, masks, 2, 4, target)
    run_and_compare(weights, masks, 1, 4, target)
    conv = nm_random_weights([(64, 128, 3, 3)], dtype, gen)
    run_and_compare(conv, [torch.rand(conv[0].shape, generator=gen) < 0.9], 2, 4, target)


@pytest.mark.parametrize("rule", [(2, 4), (1, 2), (3, 8), (2, 3)], ids=rule_id)
def test_reference_is_the_literal_rule(rule, gen):
    n, m = rule
    for kind in ("normal", "ties"):
        shapes = [(3, 2 * m), (2, m, 2, 3), (3 * m,), (2, m, 5)]
        weights = nm_random_weights(shapes, torch.float32, gen, kind)
        masks = [torch.rand(s, generator=gen) < 0.75 for s in shapes]
        want = [literal_rule(w, mk, n, m) for w, mk in zip(weights, masks)]
        got = [mk.clone() for mk in masks]
        reference.prune_(weights, got, scope="nm", n=n, m=m)
        for i, (g, w) in enumerate(zip(got, want)):
            assert torch.equal(g, w), f"reference masks[{i}] != the literal rule ({kind})"


def test_groups_run_along_input_channels():
    """Linear [O, I]: m consecutive entries of a row. Conv [O, C, kh, kw]: m consecutive input
    channels at one (o, kh, kw), kh * kw apart in memory."""
    lin = torch.tensor([[1.0, 4.0, 3.0, 2.0, -8.0, 5.0, 6.0, 7.0]])
    mask = torch.ones_like(lin, dtype=torch.bool)
    lth_fast.prune_([lin], [mask], scope=NM(2, 4))
    assert mask.tolist() == [[False, True, True, False, True, False, False, True]]
    conv = torch.zeros(1, 4, 2, 1)
    conv[0, :, 0, 0] = torch.tensor([1.0, 4.0, 3.0, 2.0])  # channels at kh = 0
    conv[0, :, 1, 0] = torch.tensor([9.0, 1.0, 1.0, 9.0])  # channels at kh = 1
    mask = torch.ones_like(conv, dtype=torch.bool)
    lth_fast.prune_([conv], [mask], scope=NM(2, 4))
    assert mask[0, :, 0, 0].tolist() == [False, True, True, False]
    assert mask[0, :, 1, 0].tolist() == [True, False, False, True]


def test_ties_go_to_the_earlier_position(target):
    w = torch.tensor([[2.0, -2.0, 2.0, 0.0, -0.0, 0.0, 0.0, 1.0,
                       float("inf"), 5.0, -float("inf"), 5.0]]).to(target)
    mask = torch.ones(w.shape, dtype=torch.bool, device=target)
    lth_fast.prune_([w], [mask], scope=NM(2, 4))
    assert mask.cpu().tolist() == [[True, True, False, False,
                                    True, False, False, True,
                                    True, False, True, False]]


def test_groups_with_few_alive_keep_them_all(target):
    w = torch.arange(1.0, 13.0).reshape(1, 12).to(target)
    mask = torch.tensor([[True, False, False, False,   # 1 alive: kept
                          False, True, False, True,    # 2 alive: kept
                          True, True, False, True]],   # 3 alive: the smallest goes
                        device=target)
    stats = lth_fast.prune_([w], [mask], scope=NM(2, 4))
    assert mask.cpu().tolist() == [[True, False, False, False, False, True, False, True,
                                    False, True, False, True]]
    assert (stats.alive_before, stats.pruned) == (6, 1)


@pytest.mark.parametrize("rule", [(2, 4), (1, 2), (3, 8)], ids=rule_id)
def test_idempotent(target, rule, gen):
    n, m = rule
    weights = nm_random_weights(shapes_for(m, gen), torch.float32, gen)
    masks = [torch.rand(w.shape, generator=gen) < 0.9 for w in weights]
    once, _ = run_and_compare(weights, masks, n, m, target)
    twice, stats = run_and_compare(weights, once, n, m, target)
    assert stats.pruned == 0
    assert all(torch.equal(a, b) for a, b in zip(once, twice))


@pytest.mark.parametrize("rule", [(4, 4), (1, 1), (64, 64)], ids=rule_id)
def test_n_equal_m_prunes_nothing(target, rule, gen):
    n, m = rule
    weights = nm_random_weights([(3, m), (m * 2,)], torch.float32, gen)
    masks = [torch.rand(w.shape, generator=gen) < 0.5 for w in weights]
    got, stats = run_and_compare(weights, masks, n, m, target)
    assert stats.pruned == 0 and all(torch.equal(a, b) for a, b in zip(got, masks))


def test_zero_size_and_empty(target, gen):
    shapes = [(0, 4), (4, 0), (0,), (2, 0, 3, 3), (0, 8, 3), (3, 4)]
    weights = nm_random_weights(shapes, torch.float32, gen)
    masks = [torch.ones(s, dtype=torch.bool) for s in shapes]
    _, stats = run_and_compare(weights, masks, 2, 4, target)
    assert [(r.alive_before, r.pruned) for r in stats.layers] == [(0, 0)] * 5 + [(12, 6)]
    for empty in (lth_fast.prune_([], [], scope=NM(1, 8)),
                  reference.prune_([], [], scope="nm", n=1, m=8)):
        assert (empty.alive_before, empty.pruned, empty.layers) == (0, 0, ())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_many_tensors(isa, dtype, gen):
    shapes = [(int(torch.randint(0, 5, (1,), generator=gen)), 4 * int(torch.randint(0, 9, (1,),
              generator=gen))) for _ in range(400)]
    weights = nm_random_weights(shapes, dtype, gen)
    masks = [torch.rand(s, generator=gen) < 0.8 for s in shapes]
    run_and_compare(weights, masks, 2, 4)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("offset", [1, 3, 7])
def test_views_in_poisoned_buffers(isa, dtype, offset, gen):
    """Weights at odd addresses inside NaN-filled buffers and masks inside guard bytes: no
    kernel reads a weight or writes a mask byte outside its tensor."""
    shapes = [(5, 4 * 9), (3, 8, 3, 3), (4 * 21,)]
    weights, masks, guards = [], [], []
    for i, s in enumerate(shapes):
        n = torch.Size(s).numel()
        wbuf = torch.full((offset + n + 64,), float("nan"), dtype=dtype)
        w = wbuf[offset:offset + n].view(s)
        w.copy_(torch.randn(s, generator=gen))
        mbuf = torch.ones(offset + n + 64, dtype=torch.bool)
        mk = mbuf[offset:offset + n].view(s)
        mk.copy_(torch.rand(s, generator=gen) < 0.8)
        weights.append(w)
        masks.append(mk)
        guards.append(mbuf)
    run_and_compare(weights, [mk.clone() for mk in masks], 2, 4)
    lth_fast.prune_(weights, masks, scope=NM(2, 4))
    for i, (mbuf, s) in enumerate(zip(guards, shapes)):
        n = torch.Size(s).numel()
        assert mbuf[:offset].all() and mbuf[offset + n:].all(), f"guard of masks[{i}] written"


def test_threads_agree(gen):
    weights = nm_random_weights([(1000, 1024), (64, 64, 3, 3)], torch.float32, gen)
    masks = [torch.rand(w.shape, generator=gen) < 0.9 for w in weights]
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            mine = [mk.clone() for mk in masks]
            results.append((lth_fast.prune_(weights, mine, scope=NM(2, 4)), mine))
    finally:
        torch.set_num_threads(before)
    assert results[0][0] == results[1][0]
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


@needs_cuda
def test_cuda_matches_cpu(gen):
    weights = nm_random_weights([(300, 256), (32, 64, 3, 3), (64,)], torch.float32, gen, "ties")
    masks = [torch.rand(w.shape, generator=gen) < 0.8 for w in weights]
    cpu = [mk.clone() for mk in masks]
    cuda = [mk.cuda() for mk in masks]
    assert (lth_fast.prune_([w.cuda() for w in weights], cuda, scope=NM(2, 4))
            == lth_fast.prune_(weights, cpu, scope=NM(2, 4)))
    assert all(torch.equal(a.cpu(), b) for a, b in zip(cuda, cpu))


# -- the layers above the op -------------------------------------------------------------------
def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 16),
                               torch.nn.ReLU(), torch.nn.Linear(16, 8))


def test_pruner_two_of_four_halves_every_tensor():
    model = mlp()
    pruner = lth_fast.Pruner(model)
    stats = pruner.prune(scope=NM(2, 4))
    assert stats.pruned * 2 == stats.alive_before == sum(p.numel() for p in pruner.masks.values())
    for name, mask in pruner.masks.items():
        assert int(mask.sum()) * 2 == mask.numel(), name
        rows = mask.reshape(-1, 4)
        assert (rows.sum(1) == 2).all(), f"{name}: a group does not keep exactly 2"
        weight = model.get_parameter(name)
        assert (weight[~mask] == 0).all(), f"{name}: pruned weights are not 0"
        assert (weight[mask] != 0).all()
    again = pruner.prune(scope=NM(2, 4))
    assert again.pruned == 0


def test_pruner_conv_and_per_layer_refused():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3), torch.nn.Flatten(),
                                torch.nn.Linear(16 * 4 * 4, 4))
    pruner = lth_fast.Pruner(model)
    weights = [model.get_parameter(n).detach().clone() for n in pruner.names]
    masks = [torch.ones(w.shape, dtype=torch.bool) for w in weights]
    reference.prune_(weights, masks, scope="nm", n=1, m=4)
    pruner.prune(scope=NM(1, 4))
    assert all(torch.equal(pruner.masks[n], mk) for n, mk in zip(pruner.names, masks))
    with pytest.raises(ValueError, match="per_layer"):
        pruner.prune(scope=NM(2, 4), per_layer={pruner.names[0]: 0.5})


def test_distributed_front_door_single_process(gen):
    weights, masks = nm_inputs(gen)
    want = [mk.clone() for mk in masks]
    lth_fast.prune_(weights, want, scope=NM(1, 2))
    got = [mk.clone() for mk in masks]
    lth_fast.distributed.prune_(weights, got, scope=NM(1, 2))
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    with pytest.raises(ValueError, match=r"an N:M rule \(scope=NM\(2, 4\)\) takes no amount"):
        lth_fast.distributed.prune_(weights, got, 0.5, scope=NM(2, 4))


def test_fully_sharded_rows_match_one_process():
    """FSDP2 on 2 gloo ranks: each rank runs the rule on its rows, with no collective."""
    from tests.helpers.dist import run_ranks
    from tests.helpers import dist_workers

    case = dict(dims=[(8, 12), (12, 5), (4, 3)], seed=7, amount=None, scope=NM(2, 4))
    results = run_ranks(2, dist_workers.fsdp, case)
    full = results[0][2]
    want = [torch.ones(w.shape, dtype=torch.bool) for w in full]
    reference.prune_(full, want, scope="nm")
    for i, w in enumerate(want):
        got = torch.cat([r[0][i] for r in results])
        assert torch.equal(got, w), f"masks[{i}]"
    assert all(not r[4] for r in results), "N:M sent a collective"


def test_sharded_one_dimensional_refused():
    from torch.distributed.tensor import DTensor  # noqa: F401  (makes DTensor checks live)
    from lth_fast.distributed.prune import refuse_split_groups
    from lth_fast.distributed.shards import Layout

    with pytest.raises(ValueError, match=r"weights\[1\] is 1-D and sharded"):
        refuse_split_groups(Layout(object(), ((4, 8), (16,))))
