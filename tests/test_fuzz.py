"""A fuzz harness over every op: hypothesis draws whole calls — list lengths, shapes (zero-size
included), dtypes (sometimes mixed), contiguous and strided tensors, views into shared buffers
(overlapping or not, so entries alias), a meta mask among CPU tensors, NaN / inf, existing
masks, amounts and hyperparameters in and out of range — and each call runs through the fast
op and the reference, on two copies of the same buffers. Either both raise the same error (type,
op and first named position) and neither wrote a byte, or both succeed with the same result
(prune_ and rewind_ bit for bit, the update ops within 4 ulp of |old| + |new|, pruned entries
+0.0). A crash fails the run.

CI runs a few hundred derandomized cases; LTH_FAST_FUZZ=long runs 10,000 per op."""
from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lth_fast
from lth_fast import reference

from tests.helpers.ops import assert_within_ulps, bits, one_thread  # noqa: F401

LONG = os.environ.get("LTH_FAST_FUZZ") == "long"
FUZZ = settings(max_examples=10_000 if LONG else 120, deadline=None, derandomize=not LONG,
                suppress_health_check=list(HealthCheck), database=None)
FLOATS = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
OPS = ["prune_", "masked_sgd_", "masked_adam_", "rewind_"]
LISTS = {"prune_": ("weights", "masks"), "masked_sgd_": ("params", "grads", "masks", "bufs"),
         "masked_adam_": ("params", "grads", "masks", "exp_avgs", "exp_avg_sqs", "maxes"),
         "rewind_": ("params", "snapshot", "masks")}


@st.composite
def calls(draw, op):
    """(buffers, lists, kwargs): buffers are the storage (CPU templates, or a meta size);
    lists[name] holds per tensor (buffer index, offset, shape, strided)."""
    n = draw(st.integers(0, 4))
    shapes = [tuple(draw(st.lists(st.integers(0, 7), max_size=3))) for _ in range(n)]
    dtype = draw(st.sampled_from(FLOATS))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))  # values reproduce too
    buffers, lists = [], {}

    def add_buffer(kind, elems):
        if kind == "meta":
            buffers.append(("meta", elems, torch.bool))
        elif kind == torch.bool:
            alive = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
            buffers.append(torch.rand(elems, generator=gen) < alive)
        else:
            x = torch.randn(elems, dtype=torch.float64, generator=gen) * draw(
                st.sampled_from([1e-3, 1.0, 30.0]))
            if draw(st.booleans()) and elems:
                x[draw(st.integers(0, elems - 1))] = draw(st.sampled_from(
                    [math.nan, math.inf, -math.inf, -0.0, 0.0]))
            buffers.append(x.to(kind))
        return len(buffers) - 1

    for name in LISTS[op]:
        kind = torch.bool if name == "masks" else dtype
        if name == "masks" and draw(st.integers(0, 19)) == 0:
            kind = "meta"
        if kind is dtype and draw(st.integers(0, 19)) == 0:
            kind = draw(st.sampled_from(FLOATS + [torch.int64]))  # a wrong or mixed dtype
        share = draw(st.integers(0, 9)) == 0  # one buffer for the whole list: entries overlap
        specs, shared = [], add_buffer(kind, 64) if share else None
        for i, shape in enumerate(shapes):
            numel = math.prod(shape)
            strided = len(shape) > 0 and numel > 1 and draw(st.integers(0, 14)) == 0
            if shared is not None:
                specs.append((shared, draw(st.integers(0, 64 - 2 * numel)) if numel <= 32 else 0,
                              shape if numel <= 32 else (0,), strided))
            else:
                specs.append((add_buffer(kind, 2 * numel + 3), draw(st.integers(0, 3)), shape,
                              strided))
        if draw(st.integers(0, 24)) == 0 and specs:
            specs.pop(draw(st.integers(0, len(specs) - 1)))  # lengths differ
        lists[name] = specs
    return buffers, lists, _kwargs(draw, op, n)


def _kwargs(draw, op, n):
    bad = draw(st.integers(0, 9)) == 0
    if op == "prune_":
        scope = draw(st.sampled_from(["global", "layer"]))
        one = st.one_of(st.floats(0, 1), st.integers(0, 40)) if not bad else st.sampled_from(
            [-1, 1.5, math.nan, 10**20])
        if scope == "layer" and draw(st.booleans()):
            kind = draw(st.sampled_from(["f", "i"]))
            amount = [draw(st.floats(0, 1)) if kind == "f" else draw(st.integers(0, 30))
                      for _ in range(n)]
        else:
            amount = draw(one)
        return dict(amount=amount, scope=scope)
    if op == "masked_sgd_":
        momentum = draw(st.sampled_from([0.0, 0.9]))
        return dict(lr=-0.1 if bad else draw(st.sampled_from([0.0, 0.01, 1.0])),
                    momentum=momentum, dampening=draw(st.sampled_from([0.0, 0.2])),
                    weight_decay=draw(st.sampled_from([0.0, 1e-2])),
                    nesterov=momentum != 0 and draw(st.booleans()), maximize=draw(st.booleans()),
                    init_buffers=draw(st.booleans()))
    if op == "masked_adam_":
        return dict(lr=draw(st.sampled_from([1e-3, 0.1])), beta1=draw(st.sampled_from([0.9, 0.3])),
                    beta2=1.5 if bad else 0.999, eps=1e-8, step=draw(st.sampled_from([1, 4])),
                    weight_decay=draw(st.sampled_from([0.0, 1e-2])),
                    maximize=draw(st.booleans()), amsgrad=draw(st.booleans()),
                    decoupled_weight_decay=draw(st.booleans()))
    return {}


def _materialize(buffers, lists):
    store = [torch.empty(b[1], dtype=b[2], device="meta") if isinstance(b, tuple) else b.clone()
             for b in buffers]

    def tensor(spec):
        b, offset, shape, strided = spec
        buf = store[b]
        strides, acc = [], 1
        for d in reversed(shape):
            strides.append(acc * (2 if strided else 1))
            acc *= d
        return buf.as_strided(shape, tuple(reversed(strides)), offset)

    return store, {name: [tensor(s) for s in specs] for name, specs in lists.items()}


def _run(impl, op, t, kw):
    if op == "prune_":
        return impl.prune_(t["weights"], t["masks"], kw["amount"], scope=kw["scope"])
    if op == "masked_sgd_":
        bufs = t["bufs"] if kw["momentum"] else []
        return impl.masked_sgd_(t["params"], t["grads"], t["masks"], bufs, **kw)
    if op == "masked_adam_":
        kw = dict(kw)
        maxes = t["maxes"] if kw.pop("amsgrad") else None
        return impl.masked_adam_(t["params"], t["grads"], t["masks"], t["exp_avgs"],
                                 t["exp_avg_sqs"], max_exp_avg_sqs=maxes, **kw)
    return impl.rewind_(t["params"], t["snapshot"], t["masks"])


def _outcome(impl, op, case):
    buffers, lists, kw = case
    store, tensors = _materialize(buffers, lists)
    try:
        return store, ("ok", _run(impl, op, tensors, kw))
    except (ValueError, TypeError) as e:
        head = " ".join(str(e).split(" ")[:2])  # the op and the first position it names
        return store, ("error", type(e), head)


def _unchanged(store, buffers):
    return all(isinstance(b, tuple) or torch.equal(bits(s), bits(b))
               for s, b in zip(store, buffers))


def check(op, case, tally):
    buffers = case[0]
    fast_store, fast = _outcome(lth_fast, op, case)
    ref_store, ref = _outcome(reference, op, case)
    tally[fast[0]] = tally.get(fast[0], 0) + 1
    assert fast[0] == ref[0], f"fast {fast}, reference {ref}"
    if fast[0] == "error":
        assert fast == ref, f"fast raised {fast}, reference {ref}"
        assert _unchanged(fast_store, buffers) and _unchanged(ref_store, buffers), \
            "a failing call wrote"
        return
    assert fast[1] == ref[1], f"stats: fast {fast[1]}, reference {ref[1]}"
    for i, (f, r, b) in enumerate(zip(fast_store, ref_store, buffers)):
        if isinstance(b, tuple):
            continue
        if op in ("prune_", "rewind_") or not b.is_floating_point():
            assert torch.equal(bits(f), bits(r)), f"buffer {i} differs"
        else:
            assert_within_ulps(f, r, f"buffer {i}", ulps=4, scale=b.abs() + r.abs())


def run_fuzz(strategy, check_one, label: str) -> None:
    """Runs check_one(case, tally) on every case `strategy` draws (FUZZ: a few hundred
    derandomized, or 10,000 with LTH_FAST_FUZZ=long), then prints the outcomes counted."""
    tally: dict = {}

    @FUZZ
    @given(strategy)
    def run(case):
        check_one(case, tally)

    run()
    counts = ", ".join(f"{v} {k}" for k, v in sorted(tally.items()))
    print(f"\n{label}: {sum(tally.values())} cases ({counts})")


@pytest.mark.parametrize("op", OPS)
def test_fuzz(op):
    """'ok': ran on both paths with the same result; 'error': the same error on both."""
    run_fuzz(calls(op), lambda case, tally: check(op, case, tally), op)


# -- lists that are not lists of tensors -------------------------------------------------------
WRONG = [None, 3, "x", torch.zeros(2)]   # a list that is not one; None, int, str items


@st.composite
def broken_calls(draw, op):
    """A valid call of `op` with one list replaced by a wrong value, or one item of it."""
    case = draw(calls(op))
    buffers, lists, kw = case
    if not any(lists.values()):
        lists = {**lists, LISTS[op][0]: lists[LISTS[op][0]] or []}
    name = draw(st.sampled_from([n for n in LISTS[op] if n != "maxes" and
                                 (n != "bufs" or kw.get("momentum"))]))
    what = draw(st.sampled_from(WRONG))
    index = None if not lists[name] or draw(st.booleans()) else draw(
        st.integers(0, len(lists[name]) - 1))
    return buffers, lists, kw, name, index, what


def _break(tensors, name, index, what, op):
    broken = dict(tensors)
    if index is None:
        broken[name] = what
    else:
        broken[name] = list(tensors[name])
        broken[name][index] = what
    return broken


def check_broken(op, case, tally):
    """The fast front door gives a one-line error naming the op (the documented TypeError
    naming the list, unless another argument of the call is wrong too and is named first), or,
    where the wrong value is a tensor item (a legal item), its usual outcome; nothing is
    written either way."""
    buffers, lists, kw, name, index, what = case
    store, tensors = _materialize(buffers, lists)
    broken = _break(tensors, name, index, what, op)
    try:
        _run(lth_fast, op, broken, kw)
        outcome = "ok"
    except (TypeError, ValueError) as e:
        text = str(e)
        assert "\n" not in text, f"a multi-line error: {text}"
        shown = {"bufs": "momentum_buffers", "maxes": "max_exp_avg_sqs"}.get(name, name)
        assert text.startswith(f"{op}: "), text
        if not isinstance(what, torch.Tensor) and isinstance(e, TypeError) and \
                f"{op}: {shown}" not in text:
            assert text.startswith(f"{op}: amount"), text   # a wrong amount is named first
        outcome = "error"
        assert _unchanged(store, buffers), "a failing call wrote"
    tally[outcome] = tally.get(outcome, 0) + 1


@pytest.mark.parametrize("op", OPS)
def test_fuzz_lists_that_are_not_lists_of_tensors(op):
    run_fuzz(broken_calls(op), lambda case, tally: check_broken(op, case, tally),
             f"{op} with a broken list")


# -- the command line ----------------------------------------------------------------------------
# flag -> values to draw (valid and not), and when the flag applies to an accepted config
CLI_FLAGS = {
    "--scope": (["layer", "global", "nm"], lambda c: True),
    "--nm": (["2:4", "1:4", "4:4", "2:x", "0:4"], lambda c: c.pruning.scope == "nm"),
    "--rate": (["0.2", "1.5", "-1", "x"], lambda c: c.pruning.scope != "nm"),
    "--output-rate": (["0.1", "none", "2"], lambda c: c.pruning.scope != "nm"),
    "--levels": (["0", "1", "3", "-1"], lambda c: True),
    "--optimizer": (["sgd", "adam", "adamw", "rmsprop"], lambda c: True),
    "--momentum": (["0", "0.9"], lambda c: c.training.momentum == 0 or
                   c.training.optimizer == "sgd"),
    "--beta2": (["0.999", "0.9"], lambda c: c.training.beta2 == 0.999 or
                c.training.optimizer != "sgd"),
    "--augment": ([None], lambda c: c.data.dataset == "cifar10"),
    "--n-layer": (["2", "3"], lambda c: c.model.n_layer == 2 or c.model.name == "gpt"),
    "--schedule": (["step", "cosine"], lambda c: True),
    "--min-lr": (["0", "0.0001"], lambda c: c.training.min_lr == 0 or
                 c.training.schedule == "cosine"),
    "--rewind": (["init", "iteration", "lr", "auto"], lambda c: True),
    "--rewind-candidates": (["0,25", "5,5", "5000"], lambda c: c.pruning.rewind == "auto"),
    "--stable-below": (["0.02", "0"], lambda c: c.pruning.rewind == "auto"),
    "--rewind-iteration": (["0", "5", "5000"], lambda c: c.pruning.rewind_iteration == 0 or
                           c.pruning.rewind != "init"),
    "--controls": (["none", "reinit", "init", "random,reinit", "bogus"], lambda c: True),
    "--criterion": (["magnitude", "random", "bogus"], lambda c: True),
    "--early-bird-window": (["5", "3"], lambda c: c.pruning.early_bird_window == 5 or
                            c.pruning.early_bird is not None),
    "--early-bird": (["0.1", "2"], lambda c: True),
    "--data-dir": (["/nonexistent"], lambda c: c.data.dataset not in ("mnist5k", "pydoc")),
    "--keep-points": (["0,5", "5000"], lambda c: True),
    "--stop-below": (["1", "-1"], lambda c: c.pruning.scope != "nm"),
    "--preset": (["lenet_mnist5k", "gpt_pydoc", "conv2_cifar10"], lambda c: True),
}


@st.composite
def command_lines(draw):
    flags = draw(st.lists(st.sampled_from(sorted(CLI_FLAGS)), max_size=6, unique=True))
    argv = []
    for flag in flags:
        value = draw(st.sampled_from(CLI_FLAGS[flag][0]))
        argv += [flag] if value is None else [flag, value]
    return flags, argv


def test_fuzz_command_line(tmp_path, monkeypatch, capsys):
    """Over random flag combinations `lth-fast imp` either refuses in one line on stderr
    (status 2) before anything loads, or hands the driver a config in which every flag given
    applies: never a crash, never a flag accepted and ignored."""
    from lth_fast.cli import main
    import lth_fast.imp.driver as driver

    accepted = []
    monkeypatch.setattr(driver, "run_imp", lambda cfg, *a, **k: accepted.append(cfg) or [])
    monkeypatch.setattr("lth_fast.imp.cli.print_summary", lambda *a, **k: None)

    def check_line(case, tally):
        flags, argv = case
        accepted.clear()
        try:
            status = main(["imp", "--no-progress", "--run-dir", str(tmp_path / "r"), *argv])
        except SystemExit as e:   # argparse's own usage errors
            status = e.code
        err = capsys.readouterr().err
        if status == 2:
            assert err.count("\n") == 1 and not accepted, (argv, err)
            tally["refused in one line"] = tally.get("refused in one line", 0) + 1
            return
        assert status in (0, None) and len(accepted) == 1, (argv, status, err)
        cfg = accepted[0]
        for flag in flags:
            assert CLI_FLAGS[flag][1](cfg), f"{flag} accepted but does not apply: {argv}"
        tally["accepted, every flag applying"] = tally.get("accepted, every flag applying",
                                                           0) + 1

    run_fuzz(command_lines(), check_line, "command lines")
