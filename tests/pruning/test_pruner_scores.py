"""Pruner.prune / Pruner.draw / EarlyBird.observe with `scores` (lth_fast.pruning.rank) and with
scope=NM(n, m): scores rank in the weights' place through the same fused prune_, so k is exact
and ties go to the earlier position for every criterion; bad scores raise one line naming the
tensor, with nothing changed; random N:M masks are NM on random scores; the deprecated
scope="nm", n=, m= warns and gives the same masks; scores for FSDP2 shards (full-shaped, local
or DTensors) give the masks of one process."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import lth_fast
from lth_fast import NM, EarlyBird, Pruner

from tests.helpers.ops import bits
from tests.helpers.training import Net, mlp


def state(model, pruner):
    """Everything a failed call must leave as it was: the masks, and the weights' bits."""
    return ([m.clone() for m in pruner.masks.values()],
            [bits(p.detach()).clone() for p in model.parameters()])


def same_state(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1]))


def twin(make):
    """Two identical models with a Pruner each, the first already pruned a little (dead
    entries that scores must not bring back), the second with the same masks."""
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    pa, pb = Pruner(a), Pruner(b)
    pa.prune(0.2)
    pb.load_state_dict(pa.state_dict())
    pb.apply()
    return a, pa, b, pb


def random_scores(pruner, gen, dtype=torch.float32):
    return {n: torch.rand(pruner.model.get_parameter(n).shape, generator=gen, dtype=dtype)
            for n in pruner.names}


def masks_of(pruner):
    return [pruner.masks[n].clone() for n in pruner.names]


RULES = [("global", 0.3, None), ("global", 40, None), ("layer", 0.25, None),
         ("layer", 0.2, {"classifier.3.weight": 0.1})]


# -- scores equal to |w|: the masks of magnitude pruning -------------------------------------------
@pytest.mark.parametrize("scope,amount,per_layer", RULES)
def test_abs_weights_as_scores_give_the_magnitude_masks(scope, amount, per_layer):
    a, pa, b, pb = twin(Net)
    scores = {n: a.get_parameter(n).detach().abs().clone() for n in pa.names}
    got = pa.prune(amount, scope, per_layer, scores=scores)
    want = pb.prune(amount, scope, per_layer)
    assert got == want
    assert all(torch.equal(pa.masks[n], pb.masks[n]) for n in pa.names)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_abs_weights_as_scores_give_the_nm_masks():
    a, pa, b, pb = twin(mlp)
    scores = [a.get_parameter(n).detach().abs().clone() for n in pa.names]
    assert pa.prune(scope=NM(2, 4), scores=scores) == pb.prune(scope=NM(2, 4))
    assert all(torch.equal(pa.masks[n], pb.masks[n]) for n in pa.names)


# -- random scores: prune_ on those scores -------------------------------------------------------
@pytest.mark.parametrize("form", ["dict", "list"])
@pytest.mark.parametrize("scope,amount,per_layer", RULES)
def test_scores_give_the_masks_of_prune_on_them(scope, amount, per_layer, form, gen):
    model, pruner, _, _ = twin(Net)
    scores = random_scores(pruner, gen)
    want = masks_of(pruner)
    amounts = amount if per_layer is None else [per_layer.get(n, amount) for n in pruner.names]
    want_stats = lth_fast.prune_(list(scores.values()), want, amounts, scope=scope)
    drawn = pruner.draw(amount, scope, per_layer, scores=scores if form == "dict"
                        else list(scores.values()))
    assert all(torch.equal(drawn[n], w) for n, w in zip(pruner.names, want))
    stats = pruner.prune(amount, scope, per_layer, scores=scores if form == "dict"
                         else list(scores.values()))
    assert stats == want_stats
    for n, w in zip(pruner.names, want):
        assert torch.equal(pruner.masks[n], w), n
        weight = model.get_parameter(n)
        assert (weight[~w] == 0).all(), f"{n}: the pruned weights are not 0"


def test_draw_with_scores_changes_neither_masks_nor_weights(gen):
    model, pruner, _, _ = twin(Net)
    before = state(model, pruner)
    drawn = pruner.draw(0.5, scores=random_scores(pruner, gen))
    assert same_state(before, state(model, pruner))
    assert sum(int(m.sum()) for m in drawn.values()) < sum(int(m.sum()) for m in before[0])


def test_exact_k_and_ties_by_position():
    """Constant scores: every alive entry ties, so the first k alive positions (list index,
    then element index) are pruned, k exactly."""
    model, pruner, _, _ = twin(Net)
    alive = torch.cat([m.reshape(-1) for m in pruner.masks.values()])
    k = int(alive.sum()) // 3
    stats = pruner.prune(k, scores={n: torch.full(m.shape, 0.5)
                                    for n, m in pruner.masks.items()})
    assert stats.pruned == k
    after = torch.cat([m.reshape(-1) for m in pruner.masks.values()])
    cut = torch.nonzero(alive).flatten()[k]  # the first alive position that stays
    assert not after[:cut].any() and torch.equal(after[cut:], alive[cut:])


def test_scores_of_other_dtypes_and_devices_rank_as_one(gen):
    """One ranking needs one dtype: float16 beside float64 scores are ranked upcast, which
    keeps their order exactly."""
    model, pruner, _, _ = twin(Net)
    scores = random_scores(pruner, gen, torch.float64)
    scores[pruner.names[1]] = scores[pruner.names[1]].half()
    want = masks_of(pruner)
    lth_fast.prune_([s.double() for s in scores.values()], want, 0.4)
    pruner.prune(0.4, scores=scores)
    assert all(torch.equal(pruner.masks[n], w) for n, w in zip(pruner.names, want))


def test_scores_that_need_grad_are_read_not_differentiated(gen):
    model, pruner, _, _ = twin(Net)
    scores = {n: s.requires_grad_() for n, s in random_scores(pruner, gen).items()}
    want = masks_of(pruner)
    lth_fast.prune_([s.detach() for s in scores.values()], want, 0.3)
    pruner.prune(0.3, scores=scores)
    assert all(torch.equal(pruner.masks[n], w) for n, w in zip(pruner.names, want))


# -- N:M with scores ------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", [NM(2, 4), NM(1, 4), NM(1, 2)], ids=repr)
def test_random_nm_masks_are_nm_on_random_scores(rule, gen):
    model = mlp()
    pruner = Pruner(model)
    scores = [torch.rand(model.get_parameter(n).shape, generator=gen) for n in pruner.names]
    want = masks_of(pruner)
    want_stats = lth_fast.prune_(scores, want, scope=rule)
    drawn = pruner.draw(scope=rule, scores=scores)
    assert all(torch.equal(drawn[n], w) for n, w in zip(pruner.names, want))
    assert pruner.prune(scope=rule, scores=scores) == want_stats
    for n, w in zip(pruner.names, want):
        assert torch.equal(pruner.masks[n], w), n
        groups = pruner.masks[n].reshape(-1, rule.m)
        assert (groups.sum(1) == rule.n).all(), f"{n}: a group does not keep exactly {rule.n}"
        assert (model.get_parameter(n)[~w] == 0).all()
    magnitude = Pruner(mlp())
    magnitude.prune(scope=rule)
    assert any(not torch.equal(magnitude.masks[n], pruner.masks[n]) for n in pruner.names)


# -- bad scores: one line naming the tensor, nothing changed -------------------------------------
def bad_cases(pruner, gen):
    names = pruner.names
    good = random_scores(pruner, gen)
    listed = list(good.values())
    first, second = names[0], names[1]
    nan = dict(good)
    nan[second] = good[second].clone()
    nan[second].view(-1)[3] = float("nan")
    return [
        ({k: v for k, v in good.items() if k != second}, ValueError,
         f"scores has no entry for ['{second}']"),
        (dict(good, **{"classifier.9.weight": listed[0]}), ValueError,
         "scores names ['classifier.9.weight'], which are not pruned tensors"),
        (listed[:-1], ValueError, f"scores holds {len(names) - 1} tensors but {len(names)} are "
                                  f"pruned"),
        (dict(good, **{second: good[second][:1]}), ValueError,
         f"scores['{second}'] has shape [1, "),
        (listed[:1] + [listed[1].reshape(-1)] + listed[2:], ValueError,
         f"scores[1] ({second}) has shape [{listed[1].numel()}]"),
        (dict(good, **{first: (good[first] * 100).long()}), TypeError,
         f"scores['{first}'] must be float32, float16, bfloat16 or float64, got torch.int64"),
        (dict(good, **{first: good[first] > 0.5}), TypeError,
         f"scores['{first}'] must be float32, float16, bfloat16 or float64, got torch.bool"),
        (dict(good, **{first: good[first].tolist()}), TypeError,
         f"scores['{first}'] must be a tensor, got list"),
        (listed[0], TypeError, "scores must be a dict {name: tensor} or a list in pruner.names "
                               "order, got Tensor"),
        (nan, ValueError, f"scores['{second}'] contains NaN"),
        ([listed[0], nan[second]] + listed[2:], ValueError, f"scores[1] ({second}) contains NaN"),
    ]


@pytest.mark.parametrize("call", ["prune", "draw"])
def test_bad_scores_raise_one_line_naming_the_tensor(call, gen):
    model, pruner, _, _ = twin(Net)
    for scores, exc, needle in bad_cases(pruner, gen):
        before = state(model, pruner)
        into = {n: torch.zeros(m.shape, dtype=torch.bool) for n, m in pruner.masks.items()}
        with pytest.raises(exc) as info:
            if call == "prune":
                pruner.prune(0.3, scores=scores)
            else:
                pruner.draw(0.3, scores=scores, into=into)
        message = str(info.value)
        assert "\n" not in message.strip(), f"not one line: {message!r}"
        assert needle in message, f"{needle!r} not in {message!r}"
        assert same_state(before, state(model, pruner)), f"changed by {needle!r}"
        if "NaN" not in needle:  # the op finds a NaN after draw has copied the masks to `into`
            assert not any(m.any() for m in into.values()), f"into written by {needle!r}"


def test_bad_scores_with_nm(gen):
    model = mlp()
    pruner = Pruner(model)
    scores = [torch.rand(model.get_parameter(n).shape, generator=gen) for n in pruner.names]
    scores[2] = scores[2].clone()
    scores[2][0, 0] = float("nan")
    before = state(model, pruner)
    with pytest.raises(ValueError, match=r"^prune_: scores\[2\] \(4.weight\) contains NaN$"):
        pruner.prune(scope=NM(2, 4), scores=scores)
    assert same_state(before, state(model, pruner))


# -- NM and the old spelling through the Pruner and EarlyBird ------------------------------------
def test_pruner_old_spelling_warns_and_gives_the_same_masks():
    a, pa, b, pb = twin(mlp)
    with pytest.warns(DeprecationWarning) as record:
        drawn = pa.draw(scope="nm", n=1, m=4)
        old = pa.prune(scope="nm", n=1, m=4)
    assert [str(r.message) for r in record] == [
        f"Pruner.{call}(scope='nm', n=1, m=4) is deprecated and goes in the next release; "
        f"write scope=lth_fast.NM(1, 4)" for call in ("draw", "prune")]
    assert all(r.filename == __file__ for r in record), "the warning points at the caller"
    assert old == pb.prune(scope=NM(1, 4))
    assert all(torch.equal(pa.masks[n], pb.masks[n]) for n in pa.names)
    assert all(torch.equal(drawn[n], pb.masks[n]) for n in pa.names)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_pruner_refuses_what_does_not_go_with_nm():
    model = mlp()
    pruner = Pruner(model)
    before = state(model, pruner)
    for kwargs, exc, message in [
            (dict(amount=0.5, scope=NM(2, 4)), ValueError,
             "Pruner.prune: an N:M rule (scope=NM(2, 4)) takes no amount, got 0.5"),
            (dict(scope=NM(2, 4), m=4), ValueError,
             "Pruner.prune: n and m are given by scope=NM(2, 4), not as n=/m= too"),
            (dict(scope=NM(2, 4), per_layer={"0.weight": 0.5}), ValueError,
             "Pruner.prune: per_layer amounts need scope='layer'"),
            (dict(amount=0.5, scope="rows"), ValueError,
             "Pruner.prune: scope must be 'global', 'layer' or lth_fast.NM(n, m), got 'rows'"),
            (dict(amount=0.5, n=1, m=4), ValueError,
             "Pruner.prune: n and m are for an N:M rule; scope='global' takes an amount"),
            (dict(amount=0.5, verify_masks=True), TypeError,
             "Pruner.prune() got an unexpected keyword argument 'verify_masks'")]:
        with pytest.raises(exc) as info:
            pruner.prune(**kwargs)
        assert message in str(info.value)
    assert same_state(before, state(model, pruner))


def test_early_bird_observes_nm_and_scores(gen):
    model = mlp()
    pruner = Pruner(model)
    scores = [torch.rand(model.get_parameter(n).shape, generator=gen) for n in pruner.names]
    new, old, scored = EarlyBird(window=2), EarlyBird(window=2), EarlyBird(window=2)
    for step in range(2):
        new.observe(pruner, scope=NM(1, 4), step=step)
        with pytest.warns(DeprecationWarning, match=r"EarlyBird.observe\(scope='nm', n=1, "
                                                    r"m=4\) is deprecated.*NM\(1, 4\)"):
            old.observe(pruner, scope="nm", n=1, m=4, step=step)
        scored.observe(pruner, scope=NM(1, 4), scores=scores, step=step)
    want = pruner.draw(scope=NM(1, 4))
    assert all(torch.equal(new._scratch[n], want[n]) for n in pruner.names)
    assert all(torch.equal(old._scratch[n], want[n]) for n in pruner.names)
    assert new.history == old.history == [(1, 0.0)]
    want = pruner.draw(scope=NM(1, 4), scores=scores)
    assert all(torch.equal(scored._scratch[n], want[n]) for n in pruner.names)
    assert all(m.all() for m in pruner.masks.values()), "observe pruned the pruner"


# -- sharded weights (FSDP2 on 2 gloo ranks) -----------------------------------------------------
@pytest.mark.parametrize("scope,amount", [("global", 0.4), ("layer", 0.3), (NM(1, 4), None)],
                         ids=["global", "layer", "nm"])
def test_sharded_scores_full_local_or_dtensor_give_one_process_masks(scope, amount):
    from tests.helpers import dist_workers
    from tests.helpers.dist import run_ranks

    dims = [(8, 12), (12, 5), (4, 3)] if scope != NM(1, 4) else [(8, 12), (12, 5), (4, 6)]
    results = run_ranks(2, dist_workers.fsdp_scores, dict(dims=dims, seed=11, amount=amount,
                                                         scope=scope))
    full = results[0][0]
    want = [torch.ones(s.shape, dtype=torch.bool) for s in full]
    lth_fast.prune_(full, want, amount, scope=scope)
    for form in ("full", "local", "dtensor"):
        for i, w in enumerate(want):
            got = torch.cat([r[1][form][i] for r in results])
            assert torch.equal(got, w), f"{form}: masks[{i}]"
    for i, w in enumerate(want):
        assert torch.equal(torch.cat([r[2][i] for r in results]), w), f"prune: masks[{i}]"
    assert all(r[3] for r in results), "pruned weights are not 0"
    for r in results:
        assert "scores[0] (0.weight) has shape [1, 8] but the weight has shape [12, 8] (its " \
               "local shard: [6, 8])" in r[4]
