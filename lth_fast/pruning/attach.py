"""Pruner.attach(optimizer): pruned entries stay exactly 0 under any torch optimizer (AdamW,
Adagrad, RMSprop, Lion- or Muon-style ones), through the optimizer's own step hooks:

- before each step, the pruned entries of the gradients are set to 0, so that no statistic,
  norm or orthogonalisation sees them (zero_grads=False skips this pass: an elementwise
  optimizer such as AdamW, Adagrad, RMSprop or Lion updates each entry from its own gradient
  alone, and the pass after the step zeroes whatever the pruned gradients wrote; by default
  the pass is skipped for torch's own elementwise optimizers, ELEMENTWISE);
- after it, the pruned entries of each weight and of every state tensor of the weight's shape
  (momentum, moments, accumulators) are set to 0, in one fused rewind_ pass per
  (device, dtype), with the lists built once and rebuilt only when the state's tensors change
  (a rewind clears the state; load_state_dict replaces it);
- after load_state_dict, the loaded state is zeroed the same way.

MaskedSGD/MaskedAdam/MaskedAdamW do all of this inside their one fused step and stay the fast
path; attach costs the optimizer's own step plus one pass over the masked weights and state
(and one over the masked gradients, unless zero_grads=False).

masker() builds Pruner.masker(): the weights' zeroing alone, for a loop that calls it itself."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..ops.api import rewind_, zero_pruned
from ..ops.dtensors import local


# torch optimizers whose step updates each entry from that entry's gradient and state alone
# (no norm, no matrix operation across entries): their exact types, not subclasses, whose
# step may be anything
ELEMENTWISE = tuple(getattr(torch.optim, n) for n in (
    "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "RMSprop", "ASGD")
    if hasattr(torch.optim, n))


def unwrap_optimizer(optimizer, what: str = "Pruner.attach") -> torch.optim.Optimizer:
    """The torch.optim.Optimizer inside Lightning's LightningOptimizer (`_optimizer`) and
    Accelerate's AcceleratedOptimizer (`optimizer`), or the optimizer itself."""
    opt = optimizer
    for _ in range(8):  # wrappers of wrappers, never a cycle
        inner = getattr(opt, "_optimizer", None)
        if not isinstance(inner, torch.optim.Optimizer):
            inner = getattr(opt, "optimizer", None)
        if not isinstance(inner, torch.optim.Optimizer) or inner is opt:
            break
        opt = inner
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(f"{what}: optimizer must be a torch.optim.Optimizer (or a "
                        f"Lightning or Accelerate wrapper of one), got {type(optimizer).__name__}")
    return opt


def _split(tensors: Sequence[Tensor], masks: Sequence[Tensor]):
    """The contiguous tensors by (device, dtype), for one fused rewind_ each, and the strided
    ones (channels_last), for masked_fill_."""
    groups: Dict[tuple, Tuple[list, list]] = {}
    strided = []
    for t, m in zip(tensors, masks):
        if t.is_contiguous() and m.device == t.device:
            ts, ms = groups.setdefault((t.device, t.dtype), ([], []))
            ts.append(t)
            ms.append(m)
        else:
            strided.append((t, m))
    return groups, strided


def _fill_strided(strided) -> None:
    for t, m in strided:
        t.masked_fill_(~m.to(t.device), 0)


def _zero_now(tensors: Sequence[Tensor], masks: Sequence[Tensor]) -> None:
    """tensors = 0 where not mask, in one pass each."""
    groups, strided = _split(tensors, masks)
    for ts, ms in groups.values():
        rewind_(ts, ts, ms)
    _fill_strided(strided)


class AttachedMasks:
    """The hooks Pruner.attach registers on one optimizer; remove() takes them off."""

    def __init__(self, pruner, optimizer, zero_grads: Optional[bool] = None) -> None:
        self.pruner = pruner
        self.optimizer = opt = unwrap_optimizer(optimizer)
        if zero_grads is None:
            zero_grads = type(opt) not in ELEMENTWISE
        ours = {id(p) for g in opt.param_groups for p in g["params"]}
        if not any(id(p) in ours for p in pruner._params()):
            shown = ", ".join(pruner.names[:3]) + (", ..." if len(pruner.names) > 3 else "")
            raise ValueError(f"Pruner.attach: none of the pruned parameters ({shown}) is a "
                             f"parameter of this {type(opt).__name__}")
        self._groups = -1
        self._items: List[Tuple[Tensor, Tensor]] = []   # (param, mask) of this optimizer
        self._key: tuple = ()
        self._state_key: tuple = ()
        self._calls: list = []      # the fused passes over weights and state, lists fixed
        self._strided: list = []
        self._handles = [opt.register_step_post_hook(self._after_step),
                         opt.register_load_state_dict_post_hook(self._after_load)]
        if zero_grads:
            self._handles.append(opt.register_step_pre_hook(self._before_step))

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    # -- the lists ---------------------------------------------------------------------------
    def _params_and_masks(self) -> List[Tuple[Tensor, Tensor]]:
        """[(param, mask)] for the pruned parameters this optimizer holds; the Pruner's lookup
        (which moves masks after the model moved) only when a mask or a device changed."""
        masks = self.pruner.masks
        key = tuple(id(m) for m in masks.values())
        if (key != self._key or len(self.optimizer.param_groups) != self._groups
                or any(local(p).device != m.device for p, m in self._items)):
            ours = {id(p) for g in self.optimizer.param_groups for p in g["params"]}
            self._groups = len(self.optimizer.param_groups)
            self._items = [(p, m) for _, p, m in self.pruner._resolved() if id(p) in ours]
            self._key = tuple(id(m) for m in masks.values())
            self._state_key = ()
        return self._items

    def _state_tensors(self, param: Tensor) -> List[Tensor]:
        """The state tensors of the parameter's shape (not step counters, not factored ones)."""
        shape = local(param).shape
        out = []
        for v in self.optimizer.state.get(param, {}).values():
            if isinstance(v, Tensor) and v is not param:
                lv = local(v)
                if lv.shape == shape and lv.is_floating_point():
                    out.append(lv)
        return out

    def _zero_weights_and_state(self) -> None:
        items = self._params_and_masks()
        tensors, masks = [], []
        for p, m in items:
            for t in [local(p.detach())] + self._state_tensors(p):
                tensors.append(t)
                masks.append(m)
        key = tuple(id(t) for t in tensors)
        with torch.no_grad():
            if key != self._state_key:  # new state tensors: new lists (zero_pruned runs once)
                groups, self._strided = _split(tensors, masks)
                self._calls = [zero_pruned(ts, ms) for ts, ms in groups.values()]
                self._state_key = key
            else:
                for call in self._calls:
                    call()
            _fill_strided(self._strided)

    # -- the hooks ---------------------------------------------------------------------------
    def _before_step(self, optimizer, args, kwargs) -> None:
        grads, masks = [], []
        for p, m in self._params_and_masks():
            g = p.grad
            if g is not None:
                if g.is_sparse:
                    raise RuntimeError("Pruner.attach: sparse gradients are not supported")
                grads.append(local(g))
                masks.append(m)
        with torch.no_grad():
            _zero_now(grads, masks)

    def _after_step(self, optimizer, args, kwargs) -> None:
        self._zero_weights_and_state()

    def _after_load(self, optimizer) -> None:
        self._state_key = ()
        self._zero_weights_and_state()


def masker(items) -> Callable[[], None]:
    """Zeroes the pruned entries of the (name, parameter, mask) items, with the lists built
    once: Pruner.masker()."""
    groups: Dict[tuple, tuple] = {}
    strided = []
    for _, p, m in items:
        p = local(p.detach())
        if p.is_contiguous():
            ps, ms = groups.setdefault((p.device, p.dtype), ([], []))
            ps.append(p)
            ms.append(m)
        else:
            strided.append((p, m))
    calls = [zero_pruned(ps, ms) for ps, ms in groups.values()]

    @torch.no_grad()
    def mask() -> None:
        for call in calls:
            call()
        for p, m in strided:
            p.masked_fill_(~m, 0)
    return mask
