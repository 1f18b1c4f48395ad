"""The benchmarked ops as a small registry: one OpCase per op, each with its minimum bytes per
parameter (docs/measuring.md), the fast implementation, the pure-PyTorch reference and any further
baselines. Each op (prune, masked_sgd, rewind, masked_adam) is one `register(OpCase(...))`.

An Impl's `prepare(workload)` builds what one implementation needs (it may allocate, e.g.
nn.Modules for torch.nn.utils.prune) and returns a Prepared: `setup` runs untimed before every
repetition and must restore the state so each repetition does the same work; `op` is timed;
`result` gives the tensors compared against the fast implementation's result.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from .. import reference
from ..ops import api as ops
from .workloads import Workload


@dataclass
class Prepared:
    setup: Callable[[], None]
    op: Callable[[], object]
    result: Optional[Callable[[], List[torch.Tensor]]]  # None: nothing to compare
    cleanup: Callable[[], None] = lambda: None


@dataclass
class Impl:
    name: str
    prepare: Callable[[Workload], Prepared]
    slow: bool = False  # slow implementations run fewer repetitions


@dataclass
class OpCase:
    name: str
    bytes_per_param: int  # the least memory traffic per parameter (fp32 weights, bool masks)
    fast: Impl
    reference: Impl
    baselines: List[Impl] = field(default_factory=list)
    description: str = ""

    @property
    def impls(self) -> List[Impl]:
        return [self.fast, self.reference, *self.baselines]


OPS: Dict[str, OpCase] = {}


def register(case: OpCase) -> OpCase:
    OPS[case.name] = case
    return case


def get(name: str) -> OpCase:
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; choose from {sorted(OPS)}")
    return OPS[name]


# --- prune: global magnitude selection of 20% of the alive entries -------------------------

PRUNE_AMOUNT = 0.2


def _prune_with(fn: Callable) -> Callable[[Workload], Prepared]:
    def prepare(wl: Workload) -> Prepared:
        return Prepared(setup=wl.restore_masks,
                        op=lambda: fn(wl.weights, wl.masks, PRUNE_AMOUNT, scope="global"),
                        result=lambda: wl.masks)
    return prepare


def _prune_torch(wl: Workload) -> Prepared:
    """torch.nn.utils.prune.global_unstructured(L1Unstructured, 0.2) on modules that hold the
    workload's weights with its current 20% mask applied by custom_from_mask. The setup rebuilds
    the modules each repetition (weight_orig shares the workload's storage; pruning never writes
    it), so every timed call prunes the same 20% of the same alive entries."""
    from torch import nn
    from torch.nn.utils import prune as tprune

    state: Dict[str, list] = {"params": []}

    def setup() -> None:
        state["params"] = []  # drop the previous repetition's modules first (memory)
        params = []
        for w, m in zip(wl.weights, wl.saved_masks):
            mod = nn.Module()
            mod.weight = nn.Parameter(w)  # requires_grad, as in a model
            tprune.custom_from_mask(mod, "weight", mask=m)
            params.append((mod, "weight"))
        state["params"] = params

    def op() -> None:
        tprune.global_unstructured(state["params"], pruning_method=tprune.L1Unstructured,
                                   amount=PRUNE_AMOUNT)

    def result() -> List[torch.Tensor]:
        return [mod.weight_mask.bool() for mod, _ in state["params"]]

    def cleanup() -> None:
        state["params"] = []

    return Prepared(setup, op, result, cleanup)


def _prune_kthvalue(wl: Workload) -> Prepared:
    """What users write without lth_fast: the alive magnitudes concatenated, torch.kthvalue for
    the threshold, and masks &= |w| > threshold (ties at the cut fall differently, so a few
    entries may differ)."""
    def op() -> None:
        alive = torch.cat([w.detach().abs()[m] for w, m in zip(wl.weights, wl.masks)])
        k = round(PRUNE_AMOUNT * alive.numel())
        if k == 0:
            return
        t = torch.kthvalue(alive, k).values
        for w, m in zip(wl.weights, wl.masks):
            m &= w.detach().abs() > t

    return Prepared(setup=wl.restore_masks, op=op, result=lambda: wl.masks)


register(OpCase(
    name="prune",
    bytes_per_param=6,  # read fp32 |w| (4) and the mask (1), write the mask (1)
    fast=Impl("lth_fast", _prune_with(ops.prune_)),
    reference=Impl("reference", _prune_with(reference.prune_), slow=True),
    baselines=[Impl("torch.nn.utils.prune", _prune_torch, slow=True),
               Impl("torch.kthvalue", _prune_kthvalue, slow=True)],
    description=f"global magnitude pruning of {PRUNE_AMOUNT:.0%} of the alive weights",
))


# --- masked SGD: one step, momentum 0.9 and weight decay, 20% of the entries pruned ---------

SGD = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)


def _sgd_state(wl: Workload):
    """Params (copies of the workload's weights), gradients and momentum buffers."""
    params = [w.clone() for w in wl.weights]
    grads = [torch.randn_like(w) for w in wl.weights]
    bufs = [torch.randn_like(w) for w in wl.weights]
    return params, grads, bufs


def _sgd_with(fn: Callable) -> Callable[[Workload], Prepared]:
    def prepare(wl: Workload) -> Prepared:
        params, grads, bufs = _sgd_state(wl)
        return Prepared(setup=lambda: None,
                        op=lambda: fn(params, grads, wl.masks, bufs, **SGD), result=None)
    return prepare


def _sgd_torch_fused(wl: Workload) -> Prepared:
    """torch.optim.SGD(fused=True) with no masks at all: the bar to stay under."""
    params, grads, _ = _sgd_state(wl)
    params = [torch.nn.Parameter(p) for p in params]
    for p, g in zip(params, grads):
        p.grad = g
    opt = torch.optim.SGD(params, fused=True, **SGD)
    opt.step()  # creates the momentum buffers
    return Prepared(setup=lambda: None, op=opt.step, result=None)


register(OpCase(
    name="masked_sgd",
    bytes_per_param=21,  # read w, g, buf (12) and the mask (1), write w and buf (8)
    fast=Impl("lth_fast", _sgd_with(ops.masked_sgd_)),
    reference=Impl("reference", _sgd_with(reference.masked_sgd_), slow=True),
    baselines=[Impl("torch SGD(fused=True), no masks", _sgd_torch_fused)],
    description="one SGD step (momentum 0.9, weight decay) keeping pruned weights and momentum 0",
))


# --- rewind: weights = snapshot where alive, else 0 -----------------------------------------

def _rewind_with(fn: Callable) -> Callable[[Workload], Prepared]:
    def prepare(wl: Workload) -> Prepared:
        snapshot = [w.clone() for w in wl.weights]
        return Prepared(setup=lambda: None, op=lambda: fn(wl.weights, snapshot, wl.masks),
                        result=lambda: wl.weights)
    return prepare


register(OpCase(
    name="rewind",
    bytes_per_param=9,  # read the snapshot (4) and the mask (1), write w (4)
    fast=Impl("lth_fast", _rewind_with(ops.rewind_)),
    reference=Impl("reference", _rewind_with(reference.rewind_), slow=True),
    description="rewind the weights to a snapshot, zero where pruned",
))


# --- masked Adam: one step at step count 10, weight decay, 20% of the entries pruned --------

ADAM = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=5e-4, step=10)


def _adam_state(wl: Workload):
    """Params (copies of the workload's weights), gradients and both moments (v >= 0)."""
    params = [w.clone() for w in wl.weights]
    grads = [torch.randn_like(w) for w in wl.weights]
    exp_avgs = [torch.randn_like(w) * 0.1 for w in wl.weights]
    exp_avg_sqs = [torch.rand_like(w) * 0.01 for w in wl.weights]
    return params, grads, exp_avgs, exp_avg_sqs


def _adam_with(fn: Callable, **extra) -> Callable[[Workload], Prepared]:
    def prepare(wl: Workload) -> Prepared:
        params, grads, exp_avgs, exp_avg_sqs = _adam_state(wl)
        return Prepared(setup=lambda: None,
                        op=lambda: fn(params, grads, wl.masks, exp_avgs, exp_avg_sqs, **ADAM,
                                      **extra),
                        result=None)
    return prepare


def _adam_torch_fused(torch_cls) -> Callable[[Workload], Prepared]:
    """torch_cls(fused=True) (Adam or AdamW) with no masks at all: the bar to stay under."""
    def prepare(wl: Workload) -> Prepared:
        params, grads, _, _ = _adam_state(wl)
        params = [torch.nn.Parameter(p) for p in params]
        for p, g in zip(params, grads):
            p.grad = g
        opt = torch_cls(params, lr=ADAM["lr"], betas=(ADAM["beta1"], ADAM["beta2"]),
                        eps=ADAM["eps"], weight_decay=ADAM["weight_decay"], fused=True)
        opt.step()  # creates the moments
        return Prepared(setup=lambda: None, op=opt.step, result=None)
    return prepare


register(OpCase(
    name="masked_adam",
    bytes_per_param=29,  # read w, g, m, v (16) and the mask (1), write w, m, v (12)
    fast=Impl("lth_fast", _adam_with(ops.masked_adam_)),
    reference=Impl("reference", _adam_with(reference.masked_adam_), slow=True),
    baselines=[Impl("torch Adam(fused=True), no masks", _adam_torch_fused(torch.optim.Adam))],
    description="one Adam step (weight decay) keeping pruned weights and both moments 0",
))

DECOUPLED = dict(decoupled_weight_decay=True)

register(OpCase(
    name="masked_adamw",
    bytes_per_param=29,  # as masked_adam: the decoupled decay moves no more bytes
    fast=Impl("lth_fast", _adam_with(ops.masked_adam_, **DECOUPLED)),
    reference=Impl("reference", _adam_with(reference.masked_adam_, **DECOUPLED), slow=True),
    baselines=[Impl("torch AdamW(fused=True), no masks", _adam_torch_fused(torch.optim.AdamW))],
    description="one AdamW step (decoupled weight decay) keeping pruned weights and both "
                "moments 0",
))
