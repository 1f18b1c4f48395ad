"""Pruner.attach(optimizer): under any torch optimizer the pruned entries of the weights, the
gradients and every state tensor of the weight's shape are exactly 0, and the alive entries
equal the same optimizer run with the masking done in plain torch (masked_fill_) around each
step: the reference of what attach does, on every CPU ISA of the fused zeroing pass."""
import copy

import pytest
import torch
from torch import nn

from lth_fast import Pruner
from lth_fast.pruning.attach import unwrap_optimizer


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023): sign of an interpolated momentum, one state tensor."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.param_groups:
            b1, b2 = g["betas"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                p.mul_(1 - g["lr"] * g["weight_decay"])
                p.add_(torch.sign(m * b1 + p.grad * (1 - b1)), alpha=-g["lr"])
                m.mul_(b2).add_(p.grad, alpha=1 - b2)


class MatrixMomentum(torch.optim.Optimizer):
    """Muon-like: momentum, then the matrix update orthogonalised (here through a QR), so a
    pruned entry of the update is dense unless the optimizer's output is masked again."""

    def __init__(self, params, lr=0.02, momentum=0.95):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(g["momentum"]).add_(p.grad)
                if p.ndim == 2:
                    q, _ = torch.linalg.qr(buf.T if buf.shape[0] < buf.shape[1] else buf)
                    update = q.T if buf.shape[0] < buf.shape[1] else q
                else:
                    update = buf
                p.add_(update, alpha=-g["lr"])


OPTIMIZERS = {
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "adam-amsgrad": lambda ps: torch.optim.Adam(ps, lr=1e-2, amsgrad=True, weight_decay=1e-3),
    "adagrad": lambda ps: torch.optim.Adagrad(ps, lr=1e-2, initial_accumulator_value=0.1),
    "rmsprop": lambda ps: torch.optim.RMSprop(ps, lr=1e-3, momentum=0.9, centered=True),
    "sgd-nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "lion": lambda ps: Lion(ps, lr=1e-3, weight_decay=0.1),
    "muon-like": lambda ps: MatrixMomentum(ps),
}


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 24), nn.GELU(), nn.Linear(24, 16), nn.GELU(),
                         nn.Linear(16, 3))


def _batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 12, generator=g), torch.randint(0, 3, (8,), generator=g))
            for _ in range(n)]


def _loss(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def _masked_in_plain_torch(model, opt, masks, batches):
    """The reference: the same optimizer, masking with masked_fill_ around each step."""
    params = dict(model.named_parameters())
    for x, y in batches:
        opt.zero_grad()
        _loss(model, x, y).backward()
        with torch.no_grad():
            for n, m in masks.items():
                params[n].grad.masked_fill_(~m, 0)
        opt.step()
        with torch.no_grad():
            for n, m in masks.items():
                p = params[n]
                p.masked_fill_(~m, 0)
                for v in opt.state[p].values():
                    if isinstance(v, torch.Tensor) and v.shape == p.shape:
                        v.masked_fill_(~m, 0)


def _train(model, opt, batches):
    for x, y in batches:
        opt.zero_grad()
        _loss(model, x, y).backward()
        opt.step()


def _assert_pruned_zero(model, opt, pruner):
    params = dict(model.named_parameters())
    for n, m in pruner.masks.items():
        p = params[n]
        assert torch.equal(p[~m], torch.zeros_like(p[~m])), n
        for k, v in opt.state[p].items():
            if isinstance(v, torch.Tensor) and v.shape == p.shape:
                assert not v[~m].any(), f"{n}: state {k} has pruned entries"


ELEMENTWISE = ["adamw", "adam-amsgrad", "adagrad", "rmsprop", "sgd-nesterov", "lion"]


# zero_grads None: the default, which must zero them for the matrix optimizer (not one of
# torch's elementwise optimizers) and may skip it for the others
@pytest.mark.parametrize("name,zero_grads", [(n, z) for n in OPTIMIZERS for z in (None, True)]
                         + [(n, False) for n in ELEMENTWISE])
def test_attach_equals_plain_torch_masking(name, zero_grads, isa):
    model = _model()
    pruner = Pruner(model)
    pruner.prune(0.6)
    ref_model = copy.deepcopy(model)
    masks = {n: m.clone() for n, m in pruner.masks.items()}
    opt = OPTIMIZERS[name](model.parameters())
    ref_opt = OPTIMIZERS[name](ref_model.parameters())
    pruner.attach(opt, zero_grads=zero_grads)
    batches = _batches(6)
    _train(model, opt, batches)
    _masked_in_plain_torch(ref_model, ref_opt, masks, batches)
    _assert_pruned_zero(model, opt, pruner)
    for (n, p), (_, q) in zip(model.named_parameters(), ref_model.named_parameters()):
        assert torch.equal(p, q), f"{name}: {n} differs from the plain-torch masking"
    for p, q in zip(model.parameters(), ref_model.parameters()):
        for k, v in opt.state[p].items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, ref_opt.state[q][k]), f"{name}: state {k} differs"


def test_attach_survives_rewind_and_load_state_dict():
    model = _model()
    pruner = Pruner(model)
    pruner.snapshot()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    pruner.attach(opt)
    _train(model, opt, _batches(3))
    pruner.prune(0.5)
    pruner.rewind(opt)            # the state is cleared: its new tensors are found at the step
    _train(model, opt, _batches(3, seed=2))
    _assert_pruned_zero(model, opt, pruner)
    # a state saved without masks (dense moments) is zeroed as it is loaded
    dense_model = _model()
    dense_opt = torch.optim.AdamW(dense_model.parameters(), lr=1e-2)
    _train(dense_model, dense_opt, _batches(2))
    opt.load_state_dict(dense_opt.state_dict())
    _assert_pruned_zero(model, opt, pruner)
    _train(model, opt, _batches(2, seed=3))
    _assert_pruned_zero(model, opt, pruner)


def test_attach_only_masks_what_it_holds_and_remove_detaches():
    model = _model()
    pruner = Pruner(model)
    pruner.prune(0.5)
    last = list(model[4].parameters())
    opt_last = torch.optim.SGD(last, lr=0.5)
    handle = pruner.attach(opt_last)            # holds one pruned weight of three
    _train(model, opt_last, _batches(2))
    w = model[4].weight
    assert not w[~pruner.masks["4.weight"]].any()
    handle.remove()
    w.data.fill_(1.0)
    _train(model, opt_last, _batches(1))
    assert w[~pruner.masks["4.weight"]].any()   # detached: nothing masks it any more


def test_attach_refuses_what_it_cannot_mask():
    model = _model()
    pruner = Pruner(model)
    other = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="none of the pruned parameters"):
        pruner.attach(torch.optim.SGD(other.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="Pruner.attach: optimizer must be a torch.optim.Optimizer"):
        pruner.attach(object())
    with pytest.raises(TypeError, match="Pruner.rewind: optimizer must be"):
        pruner.snapshot()
        pruner.rewind("adam")


def test_unwrap_finds_the_optimizer_inside_wrappers():
    opt = torch.optim.SGD(_model().parameters(), lr=0.1)

    class LightningLike:
        def __init__(self, o):
            self._optimizer = o

    class AccelerateLike(torch.optim.Optimizer):
        def __init__(self, o):
            self.optimizer = o

    assert unwrap_optimizer(LightningLike(AccelerateLike(opt))) is opt
    assert unwrap_optimizer(opt) is opt
