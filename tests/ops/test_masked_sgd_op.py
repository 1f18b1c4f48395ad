"""masked_sgd_ fast == reference (docs/semantics.md, "Masked SGD") on fresh random data: every
CPU ISA (and CUDA where there is one), every dtype, every combination of SGD options, edge sizes (0, 1, 7, around SIMD
widths, across the 2^16 parallel chunk), unaligned data pointers and hundreds of tensors. Alive
entries within 1 ulp of the reference; pruned entries exactly 0 in params and buffers whatever
the inputs hold there; bad input raises an error naming the list and index, nothing mutated."""
from __future__ import annotations

import itertools

import pytest
import torch

import lth_fast
from lth_fast import reference

from tests.helpers.ops import (assert_within_ulps, bits, flat, one_thread,  # noqa: F401
                               update_inputs)
from tests.helpers.targets import DTYPES

EDGE_SHAPES = [(0,), (1,), (7,), (15,), (16,), (17,), (31,), (33,), (64, 3), (5, 0, 3), (1000,)]
LARGE = 70001  # two parallel chunks of 2^16 elements, the second one odd-sized


def _combos():
    out = []
    for mom, damp, nest, wd, mx, init in itertools.product(
            (0.0, 0.9), (0.0, 0.3), (False, True), (0.0, 1e-2), (False, True), (False, True)):
        if mom == 0 and (damp or nest or init):
            continue  # dampening, nesterov and buffers only mean something with momentum
        if nest and damp:
            continue  # torch.optim.SGD forbids it (tested with the bad input)
        out.append(dict(momentum=mom, dampening=damp, nesterov=nest, weight_decay=wd,
                        maximize=mx, init_buffers=init))
    return out


COMBOS = _combos()
COMBO_IDS = ["m{momentum}-d{dampening}-n{nesterov:d}-wd{weight_decay}-max{maximize:d}-"
             "init{init_buffers:d}".format(**c) for c in COMBOS]


def make_inputs(shapes, dtype, gen, alive_p=0.7, offsets=None):
    """params, grads, masks, buffers; with offsets, each tensor starts at an unaligned address."""
    return update_inputs(shapes, dtype, gen, [(0.1, False)], alive_p, offsets)


def run_both(params, grads, masks, bufs, lr=0.05, device="cpu", **opts):
    """Runs fast (on `device`) and reference (on CPU) on clones; checks them against each other
    and the zero rule (all tensors of a list compared at once: flat positions in messages)."""
    bufs = bufs if opts.get("momentum", 0) != 0 else []
    on = (lambda ts: [t.to(device) for t in ts]) if device != "cpu" else (lambda ts: ts)
    fp, fb = on([p.clone() for p in params]), on([b.clone() for b in bufs])
    rp, rb = [p.clone() for p in params], [b.clone() for b in bufs]
    g0 = flat(grads, params[0].dtype).clone()
    dev_grads = on(grads)
    lth_fast.masked_sgd_(fp, dev_grads, on(masks), fb, lr=lr, **opts)
    reference.masked_sgd_(rp, grads, masks, rb, lr=lr, **opts)
    assert torch.equal(bits(flat(dev_grads, g0.dtype).cpu()), bits(g0)), "grads were modified"
    fp, fb = [t.cpu() for t in fp], [t.cpu() for t in fb]
    dead = ~flat(masks, torch.bool)
    for name, fast, ref in (("params", fp, rp), ("momentum_buffers", fb, rb)):
        if not ref:
            continue
        f = flat(fast, g0.dtype)
        assert_within_ulps(f, flat(ref, g0.dtype), f"{name} ({f.dtype}, {opts})")
        assert (f[dead] == 0).all(), f"{name}: a pruned entry is not 0"
    return fp, fb


@pytest.mark.parametrize("opts", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matches_reference(target, dtype, opts, gen):
    params, grads, masks, bufs = make_inputs(EDGE_SHAPES, dtype, gen)
    run_both(params, grads, masks, bufs, device=target, **opts)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_large_tensor(target, dtype, gen):
    params, grads, masks, bufs = make_inputs([(LARGE,), (3,)], dtype, gen)
    for opts in (COMBOS[0], COMBOS[-1], dict(momentum=0.9, nesterov=True, weight_decay=1e-3)):
        run_both(params, grads, masks, bufs, device=target, **opts)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_unaligned_and_hundreds_of_tensors(isa, dtype, gen):
    """300 tensors of random sizes, every one at a different misalignment."""
    sizes = torch.randint(0, 80, (300,), generator=gen).tolist()
    shapes = [(n,) for n in sizes] + [(3, 7)]
    params, grads, masks, bufs = make_inputs(shapes, dtype, gen, offsets=list(range(1, 17)))
    run_both(params, grads, masks, bufs, momentum=0.9, dampening=0.1, weight_decay=1e-3)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_several_steps(isa, dtype, gen):
    """A first step that creates the buffers, then steps that use them, each from one state."""
    params, grads, masks, bufs = make_inputs([(257,), (LARGE,)], dtype, gen)
    opts = dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=5e-4)
    params, bufs = run_both(params, grads, masks, bufs, init_buffers=True, **opts)
    for _ in range(3):
        grads = [torch.randn(g.shape, generator=gen).to(dtype) for g in grads]
        params, bufs = run_both(params, grads, masks, bufs, **opts)


@pytest.mark.parametrize("opts", [COMBOS[1], dict(momentum=0.9, dampening=0.2, weight_decay=0.1),
                                  dict(momentum=0.9, nesterov=True, init_buffers=True)],
                         ids=["no-momentum", "momentum", "nesterov-init"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_pruned_entries_are_zero_whatever_the_inputs(target, dtype, opts, gen):
    """inf / NaN in gradients, params and buffers at pruned entries never leak; at alive entries
    they propagate exactly as in the reference."""
    shapes = [(LARGE,), (33,), (40,), (9,)]
    params, grads, masks, bufs = make_inputs(shapes, dtype, gen, alive_p=0.5)
    masks[2].fill_(False)  # a fully pruned tensor
    masks[3].fill_(True)   # a fully alive one
    specials = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0]).to(dtype)
    for t in params[:3] + grads[:3] + bufs[:3]:
        pick = torch.randint(0, 4, t.shape, generator=gen)
        where = torch.rand(t.shape, generator=gen) < 0.3
        t.copy_(torch.where(where, specials[pick], t))
    run_both(params, grads, masks, bufs, device=target, **opts)


def test_every_isa_gives_the_same_result(gen):
    """The ISAs against each other too (bitwise here: the same FMA sequence in every path)."""
    from tests.helpers.targets import SUPPORTED_ISAS, isa_env
    params, grads, masks, bufs = make_inputs([(LARGE,), (31,)], torch.float32, gen)
    results = []
    for isa in SUPPORTED_ISAS:
        with isa_env(isa):
            p, b = [x.clone() for x in params], [x.clone() for x in bufs]
            lth_fast.masked_sgd_(p, grads, masks, b, lr=0.1, momentum=0.9, weight_decay=1e-2)
            results.append(p + b)
    for isa, res in zip(SUPPORTED_ISAS[1:], results[1:]):
        for i, (x, y) in enumerate(zip(res, results[0])):
            assert_within_ulps(x, y, f"{isa} vs {SUPPORTED_ISAS[0]}: tensor {i}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_threads_agree(isa, dtype, gen):
    """Two threads (the chunks of a list split between them) give what one thread gives."""
    params, grads, masks, bufs = make_inputs([(LARGE,), (LARGE,), (9,)] + [(40,)] * 50, dtype, gen)
    results = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        p, b = [x.clone() for x in params], [x.clone() for x in bufs]
        lth_fast.masked_sgd_(p, grads, masks, b, lr=0.1, momentum=0.9, dampening=0.1)
        results.append(flat(p + b, dtype))
    assert torch.equal(bits(results[0]), bits(results[1]))


def _bad_cases():
    """(name, mutate(params, grads, masks, bufs, kw), error type, text the message must hold)."""
    def setitem(lst, i, v):
        lst[i] = v
    return [
        ("grads-length", lambda p, g, m, b, kw: g.pop(), ValueError, "grads"),
        ("masks-length", lambda p, g, m, b, kw: m.pop(), ValueError, "masks"),
        ("mask-dtype", lambda p, g, m, b, kw: setitem(m, 1, m[1].float()), TypeError, "masks[1]"),
        ("mask-shape", lambda p, g, m, b, kw: setitem(m, 2, m[2][:-1]), ValueError, "masks[2]"),
        ("param-dtype", lambda p, g, m, b, kw: setitem(p, 1, p[1].double()), TypeError,
         "params[1]"),
        ("param-int", lambda p, g, m, b, kw: setitem(p, 0, p[0].long()), TypeError, "params[0]"),
        ("param-strided", lambda p, g, m, b, kw: setitem(p, 2, torch.zeros(p[2].numel() * 2)[::2]),
         ValueError, "params[2]"),
        ("grad-dtype", lambda p, g, m, b, kw: setitem(g, 1, g[1].double()), TypeError, "grads[1]"),
        ("grad-shape", lambda p, g, m, b, kw: setitem(g, 0, g[0].reshape(1, -1)), ValueError,
         "grads[0]"),
        ("buffers-length", lambda p, g, m, b, kw: b.pop(), ValueError, "momentum_buffers"),
        ("buffer-dtype", lambda p, g, m, b, kw: setitem(b, 2, b[2].half()), TypeError,
         "momentum_buffers[2]"),
        ("buffers-without-momentum", lambda p, g, m, b, kw: kw.update(momentum=0.0), ValueError,
         "momentum_buffers"),
        ("negative-lr", lambda p, g, m, b, kw: kw.update(lr=-0.1), ValueError, "learning rate"),
        ("negative-momentum", lambda p, g, m, b, kw: kw.update(momentum=-0.5), ValueError,
         "momentum"),
        ("negative-weight-decay", lambda p, g, m, b, kw: kw.update(weight_decay=-1.0), ValueError,
         "weight_decay"),
        ("nesterov-dampening", lambda p, g, m, b, kw: kw.update(nesterov=True, dampening=0.1),
         ValueError, "nesterov"),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
@pytest.mark.parametrize("impl", [lth_fast.masked_sgd_, reference.masked_sgd_],
                         ids=["fast", "reference"])
def test_bad_input_raises_and_mutates_nothing(impl, case, gen):
    _, mutate, error, text = case
    params, grads, masks, bufs = make_inputs([(100,), (5,), (8,)], torch.float32, gen)
    kw = dict(lr=0.1, momentum=0.9)
    mutate(params, grads, masks, bufs, kw)
    before = [t.clone() for t in params + bufs]
    with pytest.raises(error) as err:
        impl(params, grads, masks, bufs, **kw)
    assert text in str(err.value), f"{err.value!r} does not mention {text!r}"
    for i, (t, t0) in enumerate(zip(params + bufs, before)):
        assert torch.equal(bits(t), bits(t0)), f"tensor {i} was modified by a failing call"


def test_empty_lists():
    lth_fast.masked_sgd_([], [], [], [], lr=0.1, momentum=0.9)
    lth_fast.masked_sgd_([], [], [], [], lr=0.1)
    for impl in (lth_fast.masked_sgd_, reference.masked_sgd_):
        with pytest.raises(ValueError, match="grads"):
            impl([], [torch.zeros(2)], [], [], lr=0.1)


def test_empty_lists_still_check_hyperparameters():
    with pytest.raises(ValueError, match="learning rate"):
        reference.masked_sgd_([], [], [], [], lr=-0.1)
    with pytest.raises(ValueError, match="learning rate"):
        lth_fast.masked_sgd_([], [], [], [], lr=-0.1)
