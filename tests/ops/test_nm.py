"""NM(n, m), the N:M rule as a scope (lth_fast.ops.nm; docs/semantics.md, "N:M selection"): the
value checks its own n and m; prune_ and distributed.prune_ read scope=NM(...) and refuse what
does not go with it; the old spelling scope="nm", n=, m= still works, with a DeprecationWarning
that says what to write, and gives the same masks. The rule itself: test_prune_nm.py; the
Pruner and EarlyBird: tests/pruning/test_pruner_scores.py."""
from __future__ import annotations

import dataclasses
import pickle
import warnings

import pytest
import torch

import lth_fast
import lth_fast.ops
from lth_fast import NM, reference


def one_line(info) -> str:
    message = str(info.value)
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    return message


# -- the value -----------------------------------------------------------------------------------
def test_nm_is_a_small_frozen_value():
    rule = NM(2, 4)
    assert (rule.n, rule.m) == (2, 4) and rule == NM(n=2, m=4) and rule != NM(1, 4)
    assert repr(rule) == "NM(2, 4)" and hash(rule) == hash(NM(2, 4))
    assert pickle.loads(pickle.dumps(rule)) == rule  # a case sent to spawned ranks
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.n = 3
    assert lth_fast.NM is lth_fast.ops.NM is NM
    assert "NM" in lth_fast.__all__
    assert type(NM(torch.tensor(3).item(), 4).n) is int


@pytest.mark.parametrize("n,m", [(0, 4), (5, 4), (-1, 4), (2, 65), (65, 65), (0, 0)])
def test_nm_refuses_out_of_range(n, m):
    with pytest.raises(ValueError) as info:
        NM(n, m)
    assert one_line(info) == f"NM(n, m) needs 1 <= n <= m <= 64, got n={n}, m={m}"


@pytest.mark.parametrize("n,m,bad,kind", [(2.0, 4, "n", "float"), (2, True, "m", "bool"),
                                          ("2", 4, "n", "str"), (2, None, "m", "NoneType")])
def test_nm_refuses_what_is_not_an_int(n, m, bad, kind):
    with pytest.raises(TypeError) as info:
        NM(n, m)
    assert one_line(info) == f"NM(n, m): {bad} must be an int, got {kind}"


@pytest.mark.parametrize("rule", [NM(1, 1), NM(64, 64), NM(7, 64)], ids=repr)
def test_the_limits_are_the_ops(rule):
    w = [torch.randn(2, rule.m)]
    mk = [torch.ones(2, rule.m, dtype=torch.bool)]
    stats = lth_fast.prune_(w, mk, scope=rule)
    assert stats.pruned == 2 * (rule.m - rule.n)


# -- the front doors read it ---------------------------------------------------------------------
def inputs(gen):
    weights = [torch.randn(s, generator=gen) for s in [(3, 8), (2, 4, 3, 3), (12,)]]
    return weights, [torch.rand(w.shape, generator=gen) < 0.8 for w in weights]


FRONT_DOORS = {"prune_": lth_fast.prune_, "distributed.prune_": lth_fast.distributed.prune_}


@pytest.mark.parametrize("door", FRONT_DOORS)
def test_nm_scope_is_the_rule(door, gen):
    weights, masks = inputs(gen)
    for n, m in [(2, 4), (1, 4), (3, 4), (1, 2)]:
        want = [mk.clone() for mk in masks]
        ref = reference.prune_(weights, want, scope="nm", n=n, m=m)
        got = [mk.clone() for mk in masks]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the new spelling warns about nothing
            stats = FRONT_DOORS[door](weights, got, scope=NM(n, m))
        assert stats == ref and all(torch.equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("door", FRONT_DOORS)
@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(amount=0.5, scope=NM(2, 4)), ValueError,
     "prune_: an N:M rule (scope=NM(2, 4)) takes no amount, got 0.5"),
    (dict(amount=0, scope=NM(1, 4)), ValueError,
     "prune_: an N:M rule (scope=NM(1, 4)) takes no amount, got 0"),
    (dict(scope=NM(2, 4), n=2), ValueError,
     "prune_: n and m are given by scope=NM(2, 4), not as n=/m= too"),
    (dict(amount=0.5, scope="rows"), ValueError,
     "prune_: scope must be 'global', 'layer' or lth_fast.NM(n, m), got 'rows'"),
    (dict(amount=0.5, scope=(2, 4)), ValueError,
     "prune_: scope must be 'global', 'layer' or lth_fast.NM(n, m), got (2, 4)"),
    (dict(amount=0.5, scope="global", n=1, m=4), ValueError,
     "prune_: n and m are for an N:M rule; scope='global' takes an amount (for N:M write "
     "scope=lth_fast.NM(n, m))"),
    (dict(amount=0.5, k=3), TypeError, "prune_() got an unexpected keyword argument 'k'"),
    (dict(scope="global"), TypeError, "scope='global' needs an amount"),
])
def test_what_does_not_go_with_it(door, kwargs, exc, message, gen):
    weights, masks = inputs(gen)
    mine = [mk.clone() for mk in masks]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(exc) as info:
            FRONT_DOORS[door](weights, mine, **kwargs)
    assert message in one_line(info)
    assert all(torch.equal(a, b) for a, b in zip(mine, masks)), "a mask was written"


# -- the old spelling, for one release -----------------------------------------------------------
@pytest.mark.parametrize("door", FRONT_DOORS)
@pytest.mark.parametrize("old,new", [(dict(n=1, m=4), NM(1, 4)), (dict(n=3), NM(3, 4)),
                                     (dict(m=8), NM(2, 8)), (dict(), NM(2, 4))])
def test_old_spelling_warns_and_gives_the_same_masks(door, old, new, gen):
    weights, masks = inputs(gen) if new.m <= 4 else ([torch.randn(3, 16, generator=gen)],
                                                     [torch.ones(3, 16, dtype=torch.bool)])
    want = [mk.clone() for mk in masks]
    want_stats = FRONT_DOORS[door](weights, want, scope=new)
    got = [mk.clone() for mk in masks]
    with pytest.warns(DeprecationWarning) as record:
        stats = FRONT_DOORS[door](weights, got, scope="nm", **old)
    assert len(record) == 1
    message = str(record[0].message)
    assert message == (f"prune_(scope='nm', n={new.n}, m={new.m}) is deprecated and goes in "
                       f"the next release; write scope=lth_fast.NM({new.n}, {new.m})")
    assert record[0].filename == __file__, "the warning points at the caller"
    assert stats == want_stats and all(torch.equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("door", FRONT_DOORS)
def test_old_spelling_still_checks(door, gen):
    weights, masks = inputs(gen)
    mine = [mk.clone() for mk in masks]
    for kwargs, exc, needle in [
            (dict(scope="nm", n=5, m=4), ValueError, "NM(n, m) needs 1 <= n <= m <= 64"),
            (dict(scope="nm", n=2.0), TypeError, "NM(n, m): n must be an int, got float"),
            (dict(scope="nm", amount=0.5), ValueError, "takes no amount, got 0.5")]:
        with pytest.warns(DeprecationWarning), pytest.raises(exc) as info:
            FRONT_DOORS[door](weights, mine, **kwargs)
        assert needle in one_line(info)
    assert all(torch.equal(a, b) for a, b in zip(mine, masks))


@pytest.mark.parametrize("door", FRONT_DOORS)
def test_default_n_and_m_beside_a_ranking_warn_and_are_ignored(door, gen):
    weights, masks = inputs(gen)
    want = [mk.clone() for mk in masks]
    want_stats = FRONT_DOORS[door](weights, want, 0.3)
    got = [mk.clone() for mk in masks]
    with pytest.warns(DeprecationWarning, match="n= and m= are deprecated and a ranking "
                                                "ignores them; drop them"):
        stats = FRONT_DOORS[door](weights, got, 0.3, scope="global", n=2, m=4)
    assert stats == want_stats and all(torch.equal(a, b) for a, b in zip(got, want))
