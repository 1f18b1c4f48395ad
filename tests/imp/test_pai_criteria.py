"""The pruning-at-initialisation criteria against plain-torch computations of their formulas on a
small network: snip |w ⊙ ∂L/∂w|, grasp -w ⊙ Hg (largest removed) and |w ⊙ Hg|, synflow
|w ⊙ ∂R/∂w| on the absolute network with an all-ones input (BatchNorm in eval mode, a GPT's
token input as the sum of its embedding rows, float64), magnitude_init |w|; SynFlow's rounds
prune exactly the scheduled count, ties and underflowed scores included."""
from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lth_fast.imp.criteria import CRITERIA, Scoring
from lth_fast.imp.criteria.grasp import TEMPERATURE
from lth_fast.imp.criteria.rounds import leaves, schedule, selections
from lth_fast.pruning import Pruner


class Data:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)


class Task:
    """A classifier's task as the criteria read it (lth_fast.imp.tasks.ClassifyTask)."""
    kind = "classify"

    def __init__(self, n=300, classes=3, seed=0):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 1, 2, 3, generator=g)
        y = torch.randint(0, classes, (n,), generator=g)
        self.data = type("D", (), dict(train=Data(x, y), num_classes=classes,
                                       input_shape=(1, 2, 3)))()

    @staticmethod
    def loss(model, x, y):
        return F.cross_entropy(model(x), y)


def mlp(seed=0, bn=False):
    torch.manual_seed(seed)
    layers = [nn.Flatten(), nn.Linear(6, 8)] + ([nn.BatchNorm1d(8)] if bn else []) + [
        nn.ReLU(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3)]
    return nn.Sequential(*layers)


def ctx_for(model, **kw):
    return Scoring(Pruner(model), seed=1, task=kw.pop("task", Task()), **kw)


def weights(pruner):
    return [pruner.model.get_parameter(n) for n in pruner.names]


def close(scores, expected, names):
    for n, e in zip(names, expected):
        torch.testing.assert_close(scores[n].to(e.dtype), e, rtol=1e-5,
                                   atol=1e-5 * float(e.abs().max()))


def keep_top(values, keep):
    """Plain reference of a global selection: the `keep` largest values stay (distinct)."""
    flat = torch.cat([v.reshape(-1) for v in values])
    kept = torch.zeros(flat.numel(), dtype=torch.bool)
    kept[flat.argsort(descending=True)[:keep]] = True
    return list(kept.split([v.numel() for v in values]))


# -- snip and grasp: every example is read (100 per class > what each class has) -----------------
def test_snip_is_w_times_the_gradient_of_the_mean_loss_over_all_chunks():
    model = mlp()
    ctx = ctx_for(model, examples=1000)   # 300 examples: two chunks of the scoring set
    task = ctx.task
    ws = weights(ctx.pruner)
    loss = F.cross_entropy(model(task.data.train.x), task.data.train.y)
    grads = torch.autograd.grad(loss, ws)
    close(CRITERIA["snip"].scores(ctx), [(w * g).abs().detach() for w, g in zip(ws, grads)],
          ctx.pruner.names)


def test_snip_reads_n_examples_per_class_drawn_by_its_seed():
    ctx = ctx_for(mlp(), examples=4)
    from lth_fast.imp.criteria.inputs import examples
    (x, y), = examples(ctx)
    assert torch.bincount(y, minlength=3).tolist() == [4, 4, 4]
    again = examples(ctx)[0][0]
    assert torch.equal(x, again)
    ctx.seed = 2
    assert not torch.equal(x, examples(ctx)[0][0])


def plain_hg(model, task):
    ws = [m.weight for m in model if isinstance(m, nn.Linear)]
    x, y = task.data.train.x, task.data.train.y
    g = torch.autograd.grad(F.cross_entropy(model(x) / TEMPERATURE, y), ws)
    grads = torch.autograd.grad(F.cross_entropy(model(x) / TEMPERATURE, y), ws,
                                create_graph=True)
    z = sum((a.detach() * b).sum() for a, b in zip(g, grads))
    return ws, torch.autograd.grad(z, ws)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_grasp_removes_the_largest_minus_w_hg(scope):
    model = mlp(3)
    ctx = ctx_for(model, examples=1000)
    ws, hg = plain_hg(copy.deepcopy(model), ctx.task)
    s = [(-w * h).detach() for w, h in zip(ws, hg)]
    scores = CRITERIA["grasp"].scores(ctx)
    assert all(scores[n].dtype == torch.float64 and (scores[n] >= 0).all() for n in scores)
    # the largest S is ranked first (score 0), and the order is S's, reversed
    top = max(v.max() for v in s)
    close(scores, [(top - v).double() for v in s], ctx.pruner.names)
    if scope == "global":
        keep = 50
        CRITERIA["grasp"].prune(ctx, dict(amount=sum(v.numel() for v in s) - keep,
                                          scope="global"))
        expected = keep_top([-v for v in s], keep)   # the smallest S stay
    else:
        per = {n: v.numel() // 2 for n, v in zip(ctx.pruner.names, s)}
        CRITERIA["grasp"].prune(ctx, dict(amount=0, scope="layer", per_layer=per))
        expected = [keep_top([-v], v.numel() - v.numel() // 2)[0] for v in s]
    for n, e in zip(ctx.pruner.names, expected):
        assert torch.equal(ctx.pruner.masks[n].reshape(-1), e), n


def test_grasp_abs_is_the_magnitude_of_w_hg():
    model = mlp(4)
    ctx = ctx_for(model, examples=1000)
    ws, hg = plain_hg(copy.deepcopy(model), ctx.task)
    close(CRITERIA["grasp_abs"].scores(ctx), [(w * h).abs().detach() for w, h in zip(ws, hg)],
          ctx.pruner.names)


def test_scoring_leaves_the_model_and_its_batchnorm_statistics_alone():
    model = mlp(5, bn=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for name in ("snip", "grasp", "grasp_abs", "synflow"):
        CRITERIA[name].scores(ctx_for(model, examples=5))
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), name
        assert all(p.grad is None for p in model.parameters()), name


# -- synflow -------------------------------------------------------------------------------------
def plain_synflow(model, x, dtype=torch.float32):
    net = copy.deepcopy(model).to(dtype).eval()
    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            if t.is_floating_point():
                t.abs_()
    ws = [m.weight for m in net if isinstance(m, nn.Linear)]
    r = net(x.to(dtype)).sum()
    return [(w * g).abs().detach() for w, g in zip(ws, torch.autograd.grad(r, ws))]


@pytest.mark.parametrize("bn", [False, True])
def test_synflow_one_round_is_the_plain_formula_batchnorm_in_eval_mode(bn):
    model = mlp(6, bn=bn)
    if bn:   # statistics as after some training: eval mode reads them, |mean| and |var|
        model[2].running_mean.uniform_(-1, 1)
        model[2].running_var.uniform_(0.5, 2)
    ctx = ctx_for(model)
    close(CRITERIA["synflow"].scores(ctx), plain_synflow(model, torch.ones(1, 1, 2, 3)),
          ctx.pruner.names)


def test_synflow_float64_scores_in_float64_where_float32_underflows():
    model = mlp(7)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(1e-17)   # a path's product: ~1e-51, below float32's range
                m.bias.zero_()
    x = torch.ones(1, 1, 2, 3)
    f32 = CRITERIA["synflow"].scores(ctx_for(model))
    f64 = CRITERIA["synflow"].scores(ctx_for(model, float64=True))
    assert all(not f32[n].any() for n in f32)          # every score underflowed to 0
    assert all(f64[n].dtype == torch.float64 and (f64[n] > 0).all() for n in f64)
    close(f64, plain_synflow(model, x, torch.float64), list(f64))


def run_rounds(model, selection, rounds, **kw):
    """SynFlow's rounds; returns the pruner and the alive counts after each round."""
    ctx = ctx_for(model, rounds=rounds, **kw)
    seen, prune = [], ctx.pruner.prune

    def spy(*a, **k):
        out = prune(*a, **k)
        seen.append({n: int(m.sum()) for n, m in ctx.pruner.masks.items()})
        return out
    ctx.pruner.prune = spy
    CRITERIA["synflow"].prune(ctx, selection)
    return ctx.pruner, seen


def plain_iterative(model, keep, rounds):
    """Tanaka et al.'s loop in plain torch with an exact global selection (distinct scores)."""
    net = copy.deepcopy(model)
    lin = [m for m in net if isinstance(m, nn.Linear)]
    masks = [torch.ones_like(m.weight, dtype=torch.bool) for m in lin]
    n = sum(m.numel() for m in masks)
    for r, a in enumerate(schedule(n, keep, rounds)):
        with torch.no_grad():
            for m, mask in zip(lin, masks):
                m.weight.mul_(mask)
        s = plain_synflow(net, torch.ones(1, 1, 2, 3))
        s = [torch.where(mask, v, torch.full_like(v, -1.0)) for v, mask in zip(s, masks)]
        masks = keep_top(s, a)
        masks = [m.reshape(v.shape) for m, v in zip(masks, s)]
    return masks


def test_synflow_rounds_prune_the_exponential_schedule_exactly_and_match_plain_torch():
    model = mlp(8)
    total = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))
    keep = 20
    pruner, seen = run_rounds(model, dict(amount=total - keep, scope="global"), 10)
    expected = schedule(total, keep, 10)
    assert [sum(s.values()) for s in seen] == expected
    assert expected == [round(total * (keep / total) ** (r / 10)) for r in range(1, 11)]
    plain = plain_iterative(model, keep, 10)
    for n, m in zip(pruner.names, plain):
        assert torch.equal(pruner.masks[n], m), n


def test_synflow_rounds_per_layer_with_rates_and_counts():
    model = mlp(9)
    pruner = Pruner(model)
    per = {pruner.names[0]: 0.5, pruner.names[1]: 7, pruner.names[2]: 0.1}
    sel = dict(amount=0.2, scope="layer", per_layer=per)
    alive = {n: pruner.masks[n].numel() for n in pruner.names}
    end = leaves(alive, sel)
    assert end == {pruner.names[0]: 24, pruner.names[1]: 33, pruner.names[2]: 13}
    pruner, seen = run_rounds(model, sel, 25)
    for n in pruner.names:
        assert [s[n] for s in seen] == schedule(alive[n], end[n], 25), n
    assert {n: int(pruner.masks[n].sum()) for n in pruner.names} == end


def test_synflow_ties_and_zero_scores_prune_exactly_the_count_earliest_first():
    """Every weight equal, biases 0: every score within a layer ties; then weights so small
    that every float32 score is 0. The reference's `score <= threshold` would prune all of a
    tied layer; each round here prunes its count, the earliest positions first."""
    for scale in (1.0, 1e-17):
        model = mlp(10)
        with torch.no_grad():
            for m in model:
                if isinstance(m, nn.Linear):
                    m.weight.fill_(0.5 * scale)
                    m.bias.zero_()
        pruner = Pruner(model)
        alive = {n: pruner.masks[n].numel() for n in pruner.names}
        sel = dict(amount=0.6, scope="layer")
        pruner, seen = run_rounds(model, sel, 7)
        end = leaves(alive, sel)
        for n in pruner.names:
            assert [s[n] for s in seen] == schedule(alive[n], end[n], 7), (scale, n)
        if scale != 1.0:   # all scores 0 in every round: the first positions go
            for n in pruner.names:
                flat = pruner.masks[n].reshape(-1)
                assert not flat[:alive[n] - end[n]].any() and flat[alive[n] - end[n]:].all()


def test_schedule_is_monotone_exact_and_ends_at_the_target():
    for start, end, rounds in ((1000, 45, 100), (10, 9, 100), (5, 0, 3), (7, 7, 4), (0, 0, 2)):
        s = schedule(start, end, rounds)
        assert len(s) == rounds and s[-1] == end
        assert all(a >= b for a, b in zip([start] + s, s)) and min(s) >= end


def test_a_gpt_token_input_is_the_sum_of_its_embedding_rows():
    from lth_fast.models import GPT, GPTConfig
    from lth_fast.pruning.selection import transformer_weights

    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=11, block_size=5, n_layer=1, n_head=2, n_embd=8)
    model = GPT(cfg)
    task = type("T", (), dict(kind="text", cfg=type("C", (), dict(
        model=type("M", (), dict(block_size=5))()))()))()
    ctx = Scoring(Pruner(model, include=transformer_weights(model)), seed=0, task=task)
    got = CRITERIA["synflow"].scores(ctx)
    net = copy.deepcopy(model).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    ws = [net.get_parameter(n) for n in ctx.pruner.names]
    x = net.wte.weight.sum(0).expand(1, 5, 8) + net.wpe(torch.arange(5))
    for block in net.blocks:
        x = block(x)
    r = net.head(net.ln_f(x)).sum()
    close(got, [(w * g).abs().detach() for w, g in zip(ws, torch.autograd.grad(r, ws))],
          ctx.pruner.names)


def test_grasp_scores_a_gpt_through_its_attention():
    """The fused CPU attention has no second derivative: scoring runs on the math kernel."""
    from lth_fast.models import GPT, GPTConfig
    from lth_fast.pruning.selection import transformer_weights

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=2, n_embd=8))
    g = torch.Generator().manual_seed(0)
    windows = torch.randint(0, 7, (3, 2, 5), generator=g)

    class Text:
        kind = "text"

        def start(self, device):
            pass

        def batch(self, it):
            return windows[it, :, :-1], windows[it, :, 1:]

        @staticmethod
        def loss(m, x, y):
            return F.cross_entropy(m(x).reshape(-1, 7), y.reshape(-1))

    ctx = Scoring(Pruner(model, include=transformer_weights(model)), seed=0, task=Text(),
                  examples=3)
    s = CRITERIA["grasp_abs"].scores(ctx)
    assert all(torch.isfinite(v).all() and v.any() for v in s.values())


def test_magnitude_init_ranks_the_weights_themselves():
    model = mlp(11)
    ctx = ctx_for(model)
    assert CRITERIA["magnitude_init"].scores(ctx) is None
    ws = [w.detach().abs().clone() for w in weights(ctx.pruner)]
    CRITERIA["magnitude_init"].prune(ctx, dict(amount=40, scope="global"))
    for n, e in zip(ctx.pruner.names, keep_top(ws, sum(w.numel() for w in ws) - 40)):
        assert torch.equal(ctx.pruner.masks[n].reshape(-1), e)
    assert math.isclose(ctx.pruner.density, 1 - 40 / sum(w.numel() for w in ws))


def test_selections_for_nm_are_one_round():
    from lth_fast.ops import NM
    model = mlp(12)
    sel = dict(amount=None, scope=NM(2, 4))
    assert selections(Pruner(model), sel, 100) == [sel]
