"""Models, data and checks shared by the MaskedSGD, MaskedAdam and Pruner tests."""
from __future__ import annotations

import copy

import torch
from torch import nn

from tests.helpers.ops import assert_within_ulps, random_masks


# -- a small MLP for the optimizer tests -----------------------------------------------------
def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(),
                         nn.Linear(16, 3))


def weight_masks(model, gen, alive_p=0.5):
    """{param: random mask} for the weights (2-D params); biases stay unmasked."""
    ws = [p for p in model.parameters() if p.dim() > 1]
    return dict(zip(ws, random_masks(ws, gen, alive_p)))


def batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 12, generator=g), torch.randn(16, 3, generator=g))
            for _ in range(n)]


def groups(model, spec):
    """One param group per layer of `spec` (a list of option dicts, one per Linear)."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    return [dict(params=list(m.parameters()), **opts) for m, opts in zip(linears, spec)]


def mask_(params_and_masks, optimizer, keys=("momentum_buffer",)):
    """What a reference run does after each step: zero the pruned weights and the pruned
    entries of the optimizer's state tensors `keys` (SGD's buffer; Adam's two moments)."""
    with torch.no_grad():
        for p, m in params_and_masks:
            p.masked_fill_(~m, 0)
            for key in keys:
                t = optimizer.state.get(p, {}).get(key)
                if t is not None:
                    t.masked_fill_(~m, 0)


def assert_pruned_zero(model_masks, optimizer, where, keys=("momentum_buffer",)):
    for p, m in model_masks.items():
        assert (p[~m] == 0).all(), f"{where}: a pruned weight is not 0"
        for key in keys:
            t = optimizer.state.get(p, {}).get(key)
            if t is not None:
                assert (t[~m] == 0).all(), f"{where}: a pruned {key} entry is not 0"


def sync_(src, src_opt, dst, dst_opt) -> None:
    """dst's params and optimizer state := src's, by param position: values copied into dst's
    dtype (the step counts as they are)."""
    def like(v, q):
        if not isinstance(v, torch.Tensor):
            return v
        return v.to(q.dtype, copy=True) if v.shape == q.shape else v.clone()

    with torch.no_grad():
        for p, q in zip(src.parameters(), dst.parameters()):
            q.copy_(p)
            state = src_opt.state.get(p)
            if state:
                dst_opt.state[q] = {k: like(v, q) for k, v in state.items()}
            else:
                dst_opt.state.pop(q, None)


def _f32(x: float) -> float:
    return torch.tensor(x, dtype=torch.float32).item()


def round_scalars_as_float32(opt) -> None:
    """The hyperparameters a float32 step rounds to float32 before using them, rounded so in a
    float64 optimizer too (weight decay and momentum; 1 - dampening, which torch computes in
    double first). Where a gradient and its weight decay term nearly cancel, that rounding
    moves the result by many ulps, so it is part of the formula the two steps share."""
    for group in opt.param_groups:
        for key in ("weight_decay", "momentum"):
            if key in group:
                group[key] = _f32(group[key])
        if "dampening" in group:
            group["dampening"] = 1 - _f32(1 - group["dampening"])


def _state_tensors(opt, params, keys):
    return [[opt.state.get(p, {}).get(k) for k in keys] for p in params]


def _value(x) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


def sgd_weight_scale(group, w_old, w_new, before, after, grad):
    """What a new SGD weight's roundings scale with: |old| + |new| + lr * (|buffer before| +
    |buffer after| + |g| + weight_decay * |w|), the terms whose roundings reach it."""
    lr, wd = _value(group["lr"]), _value(group["weight_decay"])
    terms = grad.abs() + wd * w_old.abs()
    for key in ("momentum_buffer",):
        for state in (before, after):
            if state.get(key) is not None:
                terms = terms + state[key].abs()
    return w_old.abs() + w_new.abs() + lr * terms


def adam_weight_scale(group, w_old, w_new, before, after, grad):
    """What a new Adam weight's roundings scale with: |old| + |new| + (|exp_avg before| +
    |exp_avg after|) * step_size / denom: exp_avg's roundings, carried into the update."""
    beta1, beta2 = (_value(b) for b in group["betas"])
    step = _value(after["step"])
    second = after["max_exp_avg_sq"] if group["amsgrad"] else after["exp_avg_sq"]
    denom = second.sqrt() / (1 - beta2 ** step) ** 0.5 + group["eps"]
    moments = after["exp_avg"].abs()
    if "exp_avg" in before:
        moments = moments + before["exp_avg"].abs()
    return w_old.abs() + w_new.abs() + moments * (_value(group["lr"]) / (1 - beta1 ** step)) / denom


def lockstep(pair, ref_pair, masks, steps, ulps, keys, weight_scale, grad_none_at=10,
             sched_every=50):
    """Trains (model, masked optimizer) on `steps` batches with a StepLR, and at every step
    compares its step with the torch optimizer's (+ mask_ after it) taken from the same state:
    before each step the reference model and optimizer state are set to the masked run's, and
    both get the same gradients. So a difference can never build up over steps, and each
    step's is bounded: for every masked param, each state tensor in `keys` within `ulps` ulp
    of |old| + |new|, the weight within `ulps` ulp of weight_scale(group, old, new, state
    before, state after, grad) (sgd_weight_scale, adam_weight_scale: the magnitudes of the terms
    whose roundings reach it). Unmasked params take torch's own float32 step. At step
    `grad_none_at` two params lose their gradient (both optimizers must skip them).

    The reference model is float64 (ref_model = mlp().double()): torch's own optimizer, in
    float64 from the same float32 state and with the float32 scalars of a float32 step, is the
    formula without float32 roundings in between, whichever kernels torch picks on this machine
    (with or without FMA: when a gradient and its weight decay term nearly cancel, torch's own
    float32 result moves by many ulps of the sum, differently on different CPUs)."""
    (model, opt), (ref_model, ref) = pair, ref_pair
    ref_masks = [(rp, masks[p]) for rp, p in zip(ref_model.parameters(), model.parameters())
                 if p in masks]
    mask_(list(masks.items()), opt, keys)  # start pruned
    round_scalars_as_float32(ref)
    scheds = [torch.optim.lr_scheduler.StepLR(o, step_size=sched_every, gamma=0.5)
              for o in (opt, ref)]
    params, ref_params = list(model.parameters()), list(ref_model.parameters())
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    for step, (x, y) in enumerate(batches(steps)):
        sync_(model, opt, ref_model, ref)
        old = [p.detach().clone() for p in params]
        before = [{k: v.clone() if isinstance(v, torch.Tensor) else v
                   for k, v in opt.state.get(p, {}).items()} for p in params]
        old_state = [[state.get(k) for k in keys] for state in before]
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        if step == grad_none_at:
            model[2].bias.grad = None
            model[4].weight.grad = None
        for p, q in zip(params, ref_params):
            q.grad = None if p.grad is None else p.grad.to(q.dtype, copy=True)
        opt.step()
        ref.step()
        mask_(ref_masks, ref, keys)
        for s in scheds:
            s.step()
        assert_pruned_zero(masks, opt, f"step {step}", keys)
        new_state = _state_tensors(opt, params, keys)
        for i, (p, rp) in enumerate(zip(params, ref_params)):
            if p not in masks:
                continue  # torch's own float32 step (exactly_like_torch checks that path)
            if p.grad is not None:
                scale = weight_scale(group_of[id(p)], old[i], p.detach(), before[i],
                                     opt.state.get(p, {}), p.grad)
                assert_within_ulps(p.detach(), rp.detach().to(p.dtype), f"step {step} param {i}",
                                   ulps, scale)
            else:
                assert torch.equal(p, old[i]) and torch.equal(rp, old[i].to(rp.dtype))
            for key, prev, got, want in zip(keys, old_state[i], new_state[i],
                                            _state_tensors(ref, [rp], keys)[0]):
                assert (got is None) == (want is None), f"step {step} param {i} {key}"
                if got is not None:
                    scale = got.abs() if prev is None else prev.abs() + got.abs()
                    assert_within_ulps(got, want.to(got.dtype), f"step {step} param {i} {key}",
                                       ulps, scale)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in ref.param_groups]


def exactly_like_torch(pair, ref_pair, steps, keys):
    """Without masks the optimizer is torch's own code path: trained side by side on the same
    batches (no syncing), weights and state are bit for bit the same after every step."""
    (model, opt), (ref_model, ref) = pair, ref_pair
    for step, data in enumerate(batches(steps)):
        _run(model, opt, [data])
        _run(ref_model, ref, [data])
        for i, (p, rp) in enumerate(zip(model.parameters(), ref_model.parameters())):
            assert torch.equal(p, rp), f"step {step} param {i}"
            for key in keys:
                got, want = opt.state.get(p, {}).get(key), ref.state.get(rp, {}).get(key)
                assert (got is None) == (want is None), f"step {step} param {i} {key}"
                assert got is None or torch.equal(got, want), f"step {step} param {i} {key}"


def _run(model, opt, data):
    for x, y in data:
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def check_state_dict_round_trip(make, spec, gen):
    """An optimizer loaded from another's state_dict (with the same masks) takes the same
    steps. make(param groups, masks) builds the optimizer; spec: groups' options."""
    model = mlp()
    masks = weight_masks(model, gen)
    opt = make(groups(model, spec), masks)
    _run(model, opt, batches(30))
    model2 = copy.deepcopy(model)
    masks2 = {p2: masks[p] for p, p2 in zip(model.parameters(), model2.parameters()) if p in masks}
    opt2 = make(groups(model2, spec), masks2)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    data = batches(20, seed=5)
    _run(model, opt, data)
    _run(model2, opt2, data)
    for p, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, p2)


def check_deepcopy_keeps_the_masks(make, gen, keys):
    """Like torch's optimizers, a deepcopy of (model, optimizer) trains on its own; the masks
    come along (keyed by the copied parameters). make(params, masks) builds the optimizer."""
    model = mlp()
    masks = weight_masks(model, gen)
    opt = make(model.parameters(), masks)
    _run(model, opt, batches(2))
    model2, opt2 = copy.deepcopy((model, opt))
    data = batches(3, seed=4)
    _run(model, opt, data)
    _run(model2, opt2, data)
    for p, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, p2)
    assert len(opt2._masks_now()) == len(masks)
    assert_pruned_zero(opt2._masks_now(), opt2, "copy", keys)


# -- a model with every kind of layer for the pruner tests -----------------------------------
class Net(nn.Module):
    """Conv, norm, linear and embedding layers, a tied parameter, an odd-sized output layer."""

    def __init__(self, seed=0, hidden=24):
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(),
                                      nn.Conv2d(6, 5, 3), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(5 * 4 * 4, hidden), nn.ReLU(),
                                        nn.LayerNorm(hidden), nn.Linear(hidden, 7))
        self.embed = nn.Embedding(10, 4)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


ALL = ["features.0.weight", "features.3.weight", "classifier.0.weight", "classifier.3.weight"]


def data(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 7, (8,), generator=g))
            for _ in range(n)]


def train(model, opt, n=4, seed=1, after_step=None):
    for x, y in data(n, seed):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if after_step:
            after_step()


def weights(pruner):
    return [pruner.model.get_parameter(n).detach().clone() for n in pruner.names]


# -- selection -------------------------------------------------------------------------------
