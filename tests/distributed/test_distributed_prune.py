"""Sharded prune_ across real processes (gloo on CPU), against single-process prune_ over the
unsharded tensors, bit for bit: torch.chunk shards on 2, 3 and 4 ranks (short and empty
shards), ties cut mid-shard, on a rank boundary and on a tensor boundary, ±0.0, existing masks,
global and layer scope, every dtype; real fully_shard and HSDP models; DDP replicas with
verify; bad and mismatched arguments raise on every rank, never hang; and an audit of every
collective."""
from __future__ import annotations

import pytest
import torch

import lth_fast
from lth_fast.distributed import chunk_rows

from tests.helpers import dist_workers
from tests.helpers.dist import run_ranks
from tests.helpers.dist_cases import assemble, build, oracle
from tests.helpers.targets import SUPPORTED_ISAS


DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
DIGITS = {torch.float32: 3, torch.float16: 2, torch.bfloat16: 2, torch.float64: 7}


def _alive_until(case, tensor, world=None, rank=None):
    """Alive entries before tensor `tensor` (and, with world/rank, before that rank's part)."""
    _, masks = build(case)
    n = sum(int(m.sum()) for m in masks[:tensor])
    if world is not None:
        start, _ = chunk_rows(masks[tensor].shape[0], world, rank)
        n += int(masks[tensor][:start].sum())
    return n


def _cases(world):
    shapes = [(1, 3), (3, 4), (5, 2), (7,), (1023, 3)]  # short and empty shards on 4 ranks
    cases = []
    for d, dtype in enumerate(DTYPES):
        for scope in ("global", "layer"):
            cases.append(dict(shapes=shapes, dtype=dtype, seed=10 + d, amount=0.3, scope=scope))
        cases.append(dict(shapes=shapes, dtype=dtype, seed=20 + d, kind="ties", amount=0.45))
    tied = dict(shapes=[(6, 5), (9, 2), (4, 4)], kind="one_value", seed=3)
    cut_points = {  # a tie of one magnitude cut at chosen positions
        "tensor boundary": _alive_until(tied, 1),
        "rank boundary": _alive_until(tied, 1, world, world - 1),
        "mid shard": _alive_until(tied, 1, world, 1) + 1,
        "need all ties": _alive_until(tied, 3),
        "need 0": 0,
    }
    for name, k in cut_points.items():
        cases.append(dict(tied, amount=k, name=name))
    cases.append(dict(shapes=[(5, 3), (2, 2)], seed=4, amount=[0.5, 0.25], scope="layer",
                      density=0.6))
    cases.append(dict(shapes=[(0, 3), (4,)], seed=5, amount=2))
    return cases


ENGINES = ["cpu", "any"]


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Both engines on CPU: the CPU one, and the one CUDA tensors use (LTH_FAST_SHARD_ENGINE)."""
    monkeypatch.setenv("LTH_FAST_SHARD_ENGINE", request.param)
    return request.param


@pytest.mark.parametrize("world", [2, 3, 4])
def test_chunk_shards_equal_single_process(world, engine):
    cases = _cases(world)
    results = run_ranks(world, dist_workers.shards, cases)
    for c, case in enumerate(cases):
        want_masks, want_stats = oracle(case)
        got = assemble([r[c][0] for r in results])
        for i, (g, w) in enumerate(zip(got, want_masks)):
            assert torch.equal(g, w), f"case {c} ({case.get('name', case)}), tensor {i}"
        for r in results:
            assert r[c][1] == want_stats, f"case {c}: stats differ on a rank"


@pytest.mark.parametrize("isa", SUPPORTED_ISAS)
def test_every_instruction_set(isa, monkeypatch):
    """The CPU engine's passes on each instruction set (LTH_FAST_CPU_ISA, inherited by the
    ranks)."""
    monkeypatch.setenv("LTH_FAST_SHARD_ENGINE", "cpu")
    monkeypatch.setenv("LTH_FAST_CPU_ISA", isa)
    cases = [c for c in _cases(2) if c.get("scope", "global") == "global"]
    cases.append(dict(shapes=[(300, 100), (5000,)], seed=31, amount=0.3))
    results = run_ranks(2, dist_workers.shards, cases)
    for c, case in enumerate(cases):
        got = assemble([r[c][0] for r in results])
        assert all(torch.equal(g, w) for g, w in zip(got, oracle(case)[0])), f"case {c}"


MISS = dict(BAND_SIGMAS=0.0, BAND_EXTRA_RANKS=0.0)  # a band of one sample rank: misses often
CROWDED = dict(CUT_BUCKET_MAX_COLLECTED=3)           # every cut bucket is crowded
RADIX = dict(GATHER_BYTES=0)                         # cut buckets radix-selected, not gathered


@pytest.mark.parametrize("knobs", [MISS, CROWDED, RADIX, dict(MISS, **CROWDED)],
                         ids=["band-miss", "crowded", "radix", "miss-and-crowded"])
def test_cpu_engine_slow_paths(knobs, monkeypatch):
    """The CPU engine's rare paths: a band the sample missed (marked again on the right side),
    a crowded bucket of one key (cut by position from per-tensor counts) and of several keys
    (marked again, finer), and a cut bucket too large to gather (radix-selected)."""
    monkeypatch.setenv("LTH_FAST_SHARD_ENGINE", "cpu")
    cases = [dict(c, knobs=knobs) for c in _cases(3)]
    cases += [dict(shapes=[(400, 300), (7000,)], seed=s, amount=a, dtype=dt, knobs=knobs,
                   kind=kind)
              for s, (a, dt, kind) in enumerate([(0.2, torch.float32, "random"),
                                                  (0.7, torch.bfloat16, "random"),
                                                  (0.05, torch.float16, "random"),
                                                  (0.5, torch.float32, "ties"),
                                                  (0.9, torch.float64, "random")])]
    results = run_ranks(3, dist_workers.shards, cases)
    for c, case in enumerate(cases):
        want_masks, want_stats = oracle(case)
        got = assemble([r[c][0] for r in results])
        for i, (g, w) in enumerate(zip(got, want_masks)):
            assert torch.equal(g, w), f"case {c} ({case.get('name', case)}), tensor {i}"
        assert all(r[c][1] == want_stats for r in results)


def test_collectives_are_few_small_and_integer(engine):
    """Every rank issues the same calls, all integer, none as large as the smallest tensor,
    under 64 KB in all. CPU engine: the agreement with the sample, the marking pass's counts,
    then the cut bucket's few entries (or, when a rank holds many, a histogram per digit of
    the bucket and a tie count per tensor). Any-device engine: the agreement, the alive
    counts, a histogram per digit of the key, the tie counts."""
    case = dict(shapes=[(64, 128), (256, 64), (100, 100)], seed=1, amount=0.2)
    results = run_ranks(2, dist_workers.shards, [case])
    smallest = min(torch.Size(s).numel() for s in case["shapes"]) * 4
    calls = [r[0][2] for r in results]
    assert calls[0] == calls[1]
    kinds = [c.kind for c in calls[0]]
    if engine == "cpu":
        assert kinds == ["all_gather"] * 3
    else:
        assert kinds == ["all_gather"] + ["all_reduce"] * 4 + ["all_gather"]
    assert all(c.dtype in (torch.int64, torch.int32) for c in calls[0])
    assert max(c.nbytes for c in calls[0]) < smallest
    assert sum(c.nbytes for c in calls[0]) <= 64 * 1024
    masks = assemble([r[0][0] for r in results])
    assert all(torch.equal(a, b) for a, b in zip(masks, oracle(case)[0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_digit_count_per_dtype(dtype, monkeypatch):
    """The any-device engine: one histogram per digit of the dtype's key."""
    monkeypatch.setenv("LTH_FAST_SHARD_ENGINE", "any")
    case = dict(shapes=[(8, 8)], seed=2, amount=0.5, dtype=dtype)
    results = run_ranks(2, dist_workers.shards, [case])
    kinds = [c.kind for c in results[0][0][2]]
    assert kinds.count("all_reduce") == 1 + DIGITS[dtype]


def _check_fsdp(results, case):
    masks = assemble([r[0] for r in results])
    before = assemble([r[1] for r in results])
    full = results[0][2]
    want = [m.clone() for m in before]
    stats = lth_fast.prune_(full, want, case["amount"], scope=case.get("scope", "global"))
    for i, (g, w) in enumerate(zip(masks, want)):
        assert torch.equal(g, w), f"tensor {i}"
    assert all(r[3] == stats for r in results)


@pytest.mark.parametrize("world", [2, 3])
def test_fully_shard_model(world):
    case = dict(dims=[(7, 5), (5, 9), (9, 3), (3, 1)], seed=7, amount=0.4, dead_seed=11)
    _check_fsdp(run_ranks(world, dist_workers.fsdp, case), case)


def test_fully_shard_layer_scope_bfloat16():
    case = dict(dims=[(6, 10), (10, 4)], seed=8, amount=0.25, scope="layer",
                dtype=torch.bfloat16)
    _check_fsdp(run_ranks(2, dist_workers.fsdp, case), case)


def test_hsdp_two_by_two():
    """(Replicate(), Shard(0)) on a 2x2 mesh: each replica pair ranks its two shards."""
    case = dict(dims=[(5, 6), (6, 3)], seed=9, amount=0.3, mesh=(2, 2))
    results = run_ranks(4, dist_workers.fsdp, case)
    rows = [results[0:2], results[2:4]]  # shard groups: mesh rows, ranks (0, 1) and (2, 3)
    for row in rows:
        _check_fsdp(row, case)
    for a, b in zip(rows[0], rows[1]):  # replicas agree
        assert all(torch.equal(x, y) for x, y in zip(a[0], b[0]))


def test_ddp_replicas_select_alone_and_verify():
    case = dict(shapes=[(20, 10), (10,)], seed=12, amount=0.3)
    results = run_ranks(2, dist_workers.ddp_verify, case)
    want, _ = oracle(case)
    for masks, error, calls in results:
        assert error is None
        assert all(torch.equal(a, b) for a, b in zip(masks, want))
        assert all(c.dtype == torch.int64 for c in calls)
    perturbed = run_ranks(2, dist_workers.ddp_verify, dict(case, perturb_rank=1))
    for _, error, _ in perturbed:
        assert error is not None and "masks[0] on rank 1 differs from rank 0's" in error


@pytest.mark.parametrize("how,expect", [
    ("fewer", "rank 1 was given other tensors or amounts than rank 0"),
    ("amount", "rank 1 was given other tensors or amounts than rank 0"),
    ("dtype", "rank 1 was given other tensors or amounts than rank 0"),
    ("nan", "weights[1] contains NaN"),
])
def test_bad_arguments_raise_on_every_rank(how, expect):
    case = dict(shapes=[(6, 3), (5, 2)], seed=13, amount=0.3, bad_rank=1, how=how)
    for error, unchanged in run_ranks(2, dist_workers.bad_call, case, timeout=120):
        assert error is not None and expect in error
        assert unchanged


def test_a_rank_with_bad_tensors_names_itself():
    case = dict(shapes=[(6, 3), (5, 2)], seed=13, amount=0.3, bad_rank=1, how="noncontiguous")
    (e0, u0), (e1, u1) = run_ranks(2, dist_workers.bad_call, case, timeout=120)
    assert "rank 1 of the group rejected its arguments" in e0
    assert e1 == "ValueError: prune_: weights[0] must be contiguous"
    assert u0 and u1


def test_unsupported_placements_are_refused():
    errors = run_ranks(2, dist_workers.bad_placements, None)[0]
    assert "placements (Shard(dim=1),)" in errors["Shard(1)"]
    assert "Partial" in errors["Partial"]
    assert "is a plain tensor but weights[0] is a DTensor" in errors["mixed"]
    assert "use lth_fast.distributed.prune_" in errors["front door"]
