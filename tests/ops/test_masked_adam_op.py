"""masked_adam_ fast == reference on fresh random data: every CPU ISA (and CUDA where there is
one), every dtype, Adam's options (both lerp forms of beta1, weight decay, maximize, first and
later steps, amsgrad, AdamW's decoupled weight decay), edge sizes, unaligned data pointers, hundreds of tensors, mask extremes, inf/NaN;
bad input raises an error naming the list and index with nothing mutated; opcheck and
torch.compile(fullgraph=True).

Tolerance: exp_avg and exp_avg_sq within 1 ulp (the same FMA sequence as torch's CPU kernels:
they agree bit for bit in practice). params within 4 ulp of |old weight| + |new weight| (a bound
on the update term): torch's float32 sqrt is itself up to 1.5 ulp off (measured: 8.9e-8
relative; ours is correctly rounded), and that error goes through two more roundings (/ the
bias correction, m / denom) before the update term is added to the old weight. Pruned entries:
+0.0 exactly."""
from __future__ import annotations

import itertools

import pytest
import torch

import lth_fast
from lth_fast import reference

from tests.helpers.ops import (assert_within_ulps, bits, flat, one_thread,  # noqa: F401
                               random_masks, update_inputs)
from tests.helpers.targets import DTYPES

EDGE_SHAPES = [(0,), (1,), (7,), (8,), (9,), (15,), (16,), (17,), (31,), (33,), (64, 3),
               (5, 0, 3), (1000,)]
LARGE = 70001  # two parallel chunks of 2^16 elements, the second one odd-sized
LISTS = ("params", "exp_avgs", "exp_avg_sqs")

# beta1 0.9: lerp weight 0.1 (a + w*(g-a)); 0.3: weight 0.7 (g - (1-w)*(g-a)).
COMBOS = [dict(beta1=b1, beta2=b2, weight_decay=wd, maximize=mx, step=st)
          for b1, b2, wd, mx, st in itertools.product((0.9, 0.3), (0.999, 0.0), (0.0, 1e-2),
                                                       (False, True), (1, 7))]
# amsgrad and AdamW's decoupled decay, alone and together.
COMBOS += [dict(beta1=b1, beta2=0.999, weight_decay=wd, maximize=mx, step=st, amsgrad=ams,
                decoupled_weight_decay=dec)
           for ams, dec in ((True, False), (False, True), (True, True)) for b1 in (0.9, 0.3)
           for wd, mx, st in ((1e-2, False, 1), (1e-1, True, 7), (0.0, False, 7))]
COMBO_IDS = ["b{beta1}-{beta2}-wd{weight_decay}-max{maximize:d}-s{step}".format(**c)
             + ("-ams" if c.get("amsgrad") else "") + ("-dec" if c.get("decoupled_weight_decay")
                                                       else "")
             for c in COMBOS]
LISTS_AMS = LISTS + ("max_exp_avg_sqs",)


def make_inputs(shapes, dtype, gen, alive_p=0.7, offsets=None, amsgrad=False):
    """params, grads, masks, exp_avgs, exp_avg_sqs (>= 0), and with amsgrad max_exp_avg_sqs
    (>= 0); with offsets, unaligned tensors."""
    states = [(0.1, False), (0.1, True)] + ([(0.1, True)] if amsgrad else [])
    return update_inputs(shapes, dtype, gen, states, alive_p, offsets)


def run_both(params, grads, masks, exp_avgs, exp_avg_sqs, max_exp_avg_sqs=None, device="cpu",
             lr=1e-2, amsgrad=False, **opts):
    """Runs fast (on `device`) and reference (on CPU) on clones; checks them against each other
    and the zero rule. Returns the fast results (params, exp_avgs, exp_avg_sqs and, with
    amsgrad, max_exp_avg_sqs) on CPU. amsgrad without max_exp_avg_sqs starts them at 0."""
    opts = {"step": 3, **opts}
    on = (lambda ts: [t.to(device) for t in ts]) if device != "cpu" else (lambda ts: ts)
    if amsgrad and max_exp_avg_sqs is None:
        max_exp_avg_sqs = [torch.zeros_like(p) for p in params]
    states = (params, exp_avgs, exp_avg_sqs) + ((max_exp_avg_sqs,) if amsgrad else ())
    fast = [on([t.clone() for t in lst]) for lst in states]
    ref = [[t.clone() for t in lst] for lst in states]
    dtype = params[0].dtype if params else torch.float32
    g0 = flat(grads, dtype).clone()
    dev_grads = on(grads)
    lth_fast.masked_adam_(fast[0], dev_grads, on(masks), fast[1], fast[2], lr=lr,
                          max_exp_avg_sqs=fast[3] if amsgrad else None, **opts)
    reference.masked_adam_(ref[0], grads, masks, ref[1], ref[2], lr=lr,
                           max_exp_avg_sqs=ref[3] if amsgrad else None, **opts)
    assert torch.equal(bits(flat(dev_grads, dtype).cpu()), bits(g0)), "grads were modified"
    fast = [[t.cpu() for t in lst] for lst in fast]
    dead = ~flat(masks, torch.bool)
    for name, f, r, old in zip(LISTS_AMS, fast, ref, states):
        f, r = flat(f, dtype), flat(r, dtype)
        scale = flat(old, dtype).double().abs() + r.double().abs()  # >= |update term|
        assert_within_ulps(f, r, f"{name} ({f.dtype}, {opts})", ulps=4 if name == "params" else 1,
                           scale=scale if name == "params" else None)
        assert torch.equal(bits(f[dead]), torch.zeros_like(bits(f[dead]))), \
            f"{name}: a pruned entry is not +0.0"
    return fast


@pytest.mark.parametrize("opts", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_reference(target, dtype, opts, gen):
    ams = opts.get("amsgrad", False)
    run_both(*make_inputs(EDGE_SHAPES, dtype, gen, amsgrad=ams), device=target, **opts)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_large_tensor(target, dtype, gen):
    inputs = make_inputs([(LARGE,), (3,)], dtype, gen)
    for opts in (COMBOS[0], COMBOS[31], dict(beta1=0.0, weight_decay=0.1, step=1)):
        run_both(*inputs, device=target, **opts)
    for opts in (COMBOS[-1], COMBOS[-4]):
        run_both(*inputs, device=target, **opts)  # amsgrad from zero maxima


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_unaligned_and_hundreds_of_tensors(isa, dtype, gen):
    """300 tensors of random sizes, every one at a different misalignment."""
    sizes = torch.randint(0, 80, (300,), generator=gen).tolist()
    shapes = [(n,) for n in sizes] + [(3, 7)]
    inputs = make_inputs(shapes, dtype, gen, offsets=list(range(1, 17)), amsgrad=True)
    run_both(*inputs[:5], weight_decay=1e-3, maximize=True, step=12)
    run_both(*inputs, weight_decay=1e-2, step=12, amsgrad=True, decoupled_weight_decay=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_several_steps(isa, dtype, gen):
    """From zero moments at step 1, then steps that use them, each from one state."""
    params, grads, masks, _, _ = make_inputs([(257,), (LARGE,)], dtype, gen)
    state = [params] + [[torch.zeros_like(p) for p in params] for _ in range(3)]
    for step in range(1, 5):
        grads = [torch.randn(g.shape, generator=gen).to(dtype) for g in grads]
        state = run_both(state[0], grads, masks, *state[1:], step=step, weight_decay=5e-4,
                         amsgrad=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_pruned_entries_are_zero_whatever_the_inputs(target, dtype, gen):
    """inf / NaN in every input at pruned entries never leak; at alive entries they propagate
    exactly as in the reference. Also a fully pruned and a fully alive tensor."""
    shapes = [(LARGE,), (33,), (40,), (9,)]
    params, grads, masks, exp_avgs, exp_avg_sqs, maxes = make_inputs(shapes, dtype, gen,
                                                                      alive_p=0.5, amsgrad=True)
    masks[2].fill_(False)
    masks[3].fill_(True)
    specials = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0]).to(dtype)
    for t in params[:3] + grads[:3] + exp_avgs[:3] + exp_avg_sqs[:3] + maxes[:3]:
        pick = torch.randint(0, 4, t.shape, generator=gen)
        where = torch.rand(t.shape, generator=gen) < 0.3
        t.copy_(torch.where(where, specials[pick], t))
    run_both(params, grads, masks, exp_avgs, exp_avg_sqs, device=target, weight_decay=1e-2)
    run_both(params, grads, masks, exp_avgs, exp_avg_sqs, maxes, device=target,
             weight_decay=1e-2, amsgrad=True, decoupled_weight_decay=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_threads_agree(isa, dtype, gen):
    """Two threads (the chunks of a list split between them) give what one thread gives."""
    inputs = make_inputs([(LARGE,), (LARGE,), (9,)] + [(40,)] * 50, dtype, gen)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        p, _, m, a, v = [[x.clone() for x in lst] for lst in inputs]
        lth_fast.masked_adam_(p, inputs[1], m, a, v, lr=0.1, step=4, weight_decay=1e-2)
        results.append(flat(p + a + v, dtype))
    assert torch.equal(bits(results[0]), bits(results[1]))


def test_every_isa_gives_the_same_result(gen):
    """The ISAs against each other: the same operation sequence in every path, bit for bit."""
    from tests.helpers.targets import SUPPORTED_ISAS, isa_env
    inputs = make_inputs([(LARGE,), (31,)], torch.float32, gen, amsgrad=True)
    results = []
    for isa in SUPPORTED_ISAS:
        with isa_env(isa):
            p, _, m, a, v, mx = [[x.clone() for x in lst] for lst in inputs]
            lth_fast.masked_adam_(p, inputs[1], m, a, v, lr=0.1, step=2, weight_decay=1e-2)
            adam = flat(p + a + v, torch.float32)
            lth_fast.masked_adam_(p, inputs[1], m, a, v, lr=0.1, step=3, weight_decay=1e-2,
                                  max_exp_avg_sqs=mx, decoupled_weight_decay=True)
            results.append((adam, flat(p + a + v + mx, torch.float32)))
    for isa, res in zip(SUPPORTED_ISAS[1:], results[1:]):
        for what, got, want in zip(("adam", "adamw-amsgrad"), res, results[0]):
            assert torch.equal(bits(got), bits(want)), f"{what}: {isa} vs {SUPPORTED_ISAS[0]}"


def _bad_cases():
    """(name, mutate(lists, kw), error type, text the message must hold); lists = [params,
    grads, masks, exp_avgs, exp_avg_sqs]."""
    def setitem(lst, i, f):
        lst[i] = f(lst[i])
    return [
        ("grads-length", lambda L, kw: L[1].pop(), ValueError, "grads"),
        ("masks-length", lambda L, kw: L[2].pop(), ValueError, "masks"),
        ("exp-avgs-length", lambda L, kw: L[3].pop(), ValueError, "exp_avgs"),
        ("exp-avg-sqs-length", lambda L, kw: L[4].pop(), ValueError, "exp_avg_sqs"),
        ("mask-dtype", lambda L, kw: setitem(L[2], 1, lambda t: t.float()), TypeError, "masks[1]"),
        ("mask-shape", lambda L, kw: setitem(L[2], 2, lambda t: t[:-1]), ValueError, "masks[2]"),
        ("param-dtype", lambda L, kw: setitem(L[0], 1, lambda t: t.double()), TypeError,
         "params[1]"),
        ("param-int", lambda L, kw: setitem(L[0], 0, lambda t: t.long()), TypeError, "params[0]"),
        ("param-strided", lambda L, kw: setitem(L[0], 2, lambda t: torch.zeros(t.numel() * 2)[::2]),
         ValueError, "params[2]"),
        ("grad-shape", lambda L, kw: setitem(L[1], 0, lambda t: t.reshape(1, -1)), ValueError,
         "grads[0]"),
        ("exp-avg-dtype", lambda L, kw: setitem(L[3], 2, lambda t: t.half()), TypeError,
         "exp_avgs[2]"),
        ("exp-avg-sq-strided",
         lambda L, kw: setitem(L[4], 1, lambda t: torch.zeros(t.numel() * 2)[::2]), ValueError,
         "exp_avg_sqs[1]"),
        ("exp-avg-sq-shape", lambda L, kw: setitem(L[4], 0, lambda t: t[:3]), ValueError,
         "exp_avg_sqs[0]"),
        ("negative-lr", lambda L, kw: kw.update(lr=-0.1), ValueError, "learning rate"),
        ("nan-lr", lambda L, kw: kw.update(lr=float("nan")), ValueError, "learning rate"),
        ("beta1-one", lambda L, kw: kw.update(beta1=1.0), ValueError, "beta1"),
        ("beta2-negative", lambda L, kw: kw.update(beta2=-0.1), ValueError, "beta2"),
        ("negative-eps", lambda L, kw: kw.update(eps=-1e-8), ValueError, "epsilon"),
        ("negative-weight-decay", lambda L, kw: kw.update(weight_decay=-1.0), ValueError,
         "weight_decay"),
        ("step-zero", lambda L, kw: kw.update(step=0), ValueError, "step"),
        ("step-fraction", lambda L, kw: kw.update(step=0.5), ValueError, "step"),
        ("max-length", lambda L, kw: kw.update(max_exp_avg_sqs=L[4][:-1]), ValueError,
         "max_exp_avg_sqs"),
        ("max-dtype", lambda L, kw: kw.update(max_exp_avg_sqs=[t.double() for t in L[4]]),
         TypeError, "max_exp_avg_sqs[0]"),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize("impl", [lth_fast.masked_adam_, reference.masked_adam_],
                         ids=["fast", "reference"])
def test_bad_input_raises_and_mutates_nothing(impl, case, gen):
    _, mutate, error, text = case
    lists = [list(x) for x in make_inputs([(100,), (5,), (8,)], torch.float32, gen)]
    kw = dict(lr=0.1, step=2)
    mutate(lists, kw)
    written = lists[0] + lists[3] + lists[4]
    before = [t.clone() for t in written]
    with pytest.raises(error) as err:
        impl(*lists, **kw)
    assert text in str(err.value), f"{err.value!r} does not mention {text!r}"
    for i, (t, t0) in enumerate(zip(written, before)):
        assert torch.equal(bits(t), bits(t0)), f"tensor {i} was modified by a failing call"


def test_empty_lists():
    for impl in (lth_fast.masked_adam_, reference.masked_adam_):
        impl([], [], [], [], [], lr=0.1, step=1)
        impl([], [], [], [], [], lr=0.1, step=1, max_exp_avg_sqs=[])
        with pytest.raises(ValueError, match="exp_avgs"):
            impl([], [], [], [torch.zeros(2)], [], lr=0.1, step=1)
        with pytest.raises(ValueError, match="step"):
            impl([], [], [], [], [], lr=0.1, step=0)


# -- opcheck and torch.compile --------------------------------------------------------------
SHAPES = ((10, 7), (33,), (4, 4, 4))


def _lists(gen, dtype, device):
    ps = [[torch.randn(s, generator=gen).to(dtype).to(device) for s in SHAPES] for _ in range(3)]
    sq = [(torch.randn(s, generator=gen) ** 2).to(dtype).to(device) for s in SHAPES]
    masks = [m.to(device) for m in random_masks(ps[0], gen)]
    return ps[0], ps[1], masks, ps[2], sq


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("maximize,amsgrad,decoupled", [(False, False, False),
                                                        (True, False, False),
                                                        (False, True, True)])
def test_opcheck(target, dtype, maximize, amsgrad, decoupled, gen):
    lists = _lists(gen, dtype, target)
    maxes = [t.clone() for t in lists[4]] if amsgrad else []
    torch.library.opcheck(torch.ops.lth_fast.masked_adam_.default,
                          (*lists, maxes, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 3.0, amsgrad, maximize,
                           decoupled))


@pytest.mark.parametrize("amsgrad,decoupled", [(False, False), (True, True)])
def test_compiled_step_matches_eager(target, amsgrad, decoupled, gen):
    """A training step written with the op compiles without graph breaks and equals eager."""
    def step(params, grads, masks, exp_avgs, exp_avg_sqs, maxes, t):
        lth_fast.masked_adam_(params, grads, masks, exp_avgs, exp_avg_sqs, lr=1e-2,
                              weight_decay=1e-3, step=t, max_exp_avg_sqs=maxes if amsgrad else None,
                              decoupled_weight_decay=decoupled)

    lists = _lists(gen, torch.float32, target)
    lists = (*lists, [t.clone() for t in lists[4]])
    eager = [[t.clone() for t in lst] for lst in lists]
    compiled = torch.compile(step, fullgraph=True)
    for t in (1, 2):
        step(*eager, t)
        compiled(*lists, t)
    for got, want in zip(lists, eager):
        for g, w in zip(got, want):
            assert torch.equal(g, w)
