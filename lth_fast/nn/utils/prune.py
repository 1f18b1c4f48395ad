"""torch.nn.utils.prune with its unstructured selection on the fused prune_. Change one import:

    import lth_fast.nn.utils.prune as prune      # was: import torch.nn.utils.prune as prune

and the same code gives the same model, faster: `global_unstructured` ranks the parameters (or
their importance scores) where they lie, with no `parameters_to_vector`, no concatenated copy of
weights or masks and no sort (docs/integrations.md has the measurements).

What is ours. `L1Unstructured` and `RandomUnstructured` are subclasses of torch's classes whose
`compute_mask` selects with lth_fast.prune_; `l1_unstructured`, `random_unstructured` and
`global_unstructured` use them. Everything else is torch's own object, re-exported: the
structured methods, `identity`, `custom_from_mask`, `remove`, `is_pruned`, `BasePruningMethod`,
`PruningContainer`, `CustomFromMask`, and the amount helpers.

The module state is torch's. A pruned tensor has torch's `<name>_orig` parameter, float
`<name>_mask` buffer and forward pre-hook, and iterative pruning goes through torch's
`PruningContainer`. `global_unstructured` ends as torch's does, as if by `custom_from_mask` on
every parameter, so each hook's history holds a `CustomFromMask` (holding the mask buffer
itself where torch's holds an equal tensor). So `remove`, `state_dict`, pickling, `deepcopy`
and code that reads `weight_mask` keep working, and a model pruned with one module can be
pruned further with the other.

Semantics are torch's. The number pruned is torch's `_compute_nparams_toprune` of the entries
still unpruned (mask == 1); amounts are validated by torch's helpers, with torch's error types;
importance scores are ranked instead of the weights; entries already pruned stay pruned.

Ties. torch breaks ties in no documented order (it calls `topk`). Ours prune the earliest
position first (parameter order, then row-major; docs/semantics.md). On tie-free scores the
masks equal torch's, bit for bit.

Random pruning draws the same numbers from the same generator as torch (`rand_like` of the
scores, or of the unpruned entries of the scores for `global_unstructured`) and prunes the k
largest, as torch does; on the CPU that gives torch's masks bit for bit (ties aside). On other
devices the draws of `global_unstructured` are made per parameter rather than in one call, so
they are different (equally uniform) numbers from torch's.

Where the kernel cannot take the input, torch's own code runs, so behaviour is torch's: scores
that are not float32/float16/bfloat16/float64 (integer tensors), a NaN among them, scores,
parameters and masks on different devices, sharded (DTensor) tensors, scores whose size
differs from their parameter's, a parameter listed twice, a pruning method that is not
L1Unstructured or RandomUnstructured (a custom method or subclass in `global_unstructured`),
and a `compute_mask` replaced on either class (as `mock.patch` does) in
`global_unstructured`."""
from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import List, Optional

import torch
from torch.nn.utils import prune as _torch
from torch.nn.utils.prune import (  # noqa: F401  (torch's own objects, re-exported)
    BasePruningMethod,
    CustomFromMask,
    Identity,
    LnStructured,
    PruningContainer,
    RandomStructured,
    _compute_norm,
    _compute_nparams_toprune,
    _validate_pruning_amount,
    _validate_pruning_amount_init,
    _validate_pruning_dim,
    _validate_structured_pruning,
    custom_from_mask,
    identity,
    is_pruned,
    ln_structured,
    random_structured,
    remove,
)

from ...ops import prune_
from ...ops.dtensors import is_dtensor

_FLOATS = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _select(scores: List[torch.Tensor], keep: List[torch.Tensor], k: int) -> bool:
    """Clears in `keep` the k alive entries of smallest |score| (fused prune_, ties to the earlier
    position). False, with `keep` untouched, where the kernel refuses the input (a NaN, a device
    mismatch): the caller then runs torch's code."""
    try:
        prune_(scores, keep, k)
    except (ValueError, TypeError, NotImplementedError):
        return False
    return True


def _kept(scores: torch.Tensor, k: int) -> Optional[torch.Tensor]:
    """Flat bool mask of the entries of `scores` that survive pruning the k smallest |score|, or
    None where the kernel cannot take them."""
    if scores.dtype not in _FLOATS or is_dtensor(scores):
        return None
    keep = torch.ones(scores.numel(), dtype=torch.bool, device=scores.device)
    return keep if _select([scores.detach().reshape(-1).contiguous()], [keep], k) else None


def _clear(default_mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """torch's result: a contiguous copy of default_mask with the pruned entries set to 0."""
    mask = default_mask.clone(memory_format=torch.contiguous_format)
    mask.view(-1).masked_fill_(~keep, 0)
    return mask


def _count(amount, t: torch.Tensor) -> int:
    k = _compute_nparams_toprune(amount, t.nelement())
    _validate_pruning_amount(k, t.nelement())
    return k


class L1Unstructured(_torch.L1Unstructured):
    """torch's L1Unstructured: prunes the `amount` entries of `t` of smallest |t|, here with the
    fused selection (ties to the earlier position)."""

    def compute_mask(self, t, default_mask):
        k = _count(self.amount, t)
        if k == 0 or t.device != default_mask.device:
            return super().compute_mask(t, default_mask)
        keep = _kept(t, k)
        return super().compute_mask(t, default_mask) if keep is None else _clear(default_mask, keep)


class RandomUnstructured(_torch.RandomUnstructured):
    """torch's RandomUnstructured: draws torch.rand_like(t), as torch does, and prunes the
    `amount` entries of largest draw, here with the fused selection on 1 - draw (exact for the
    draws of torch.rand, which are multiples of the dtype's epsilon / 2)."""

    def compute_mask(self, t, default_mask):
        k = _count(self.amount, t)
        if (k == 0 or t.dtype not in _FLOATS or is_dtensor(t)
                or t.device != default_mask.device):
            return super().compute_mask(t, default_mask)
        keep = torch.ones(t.numel(), dtype=torch.bool, device=t.device)
        if not _select([torch.rand_like(t).reshape(-1).neg_().add_(1)], [keep], k):
            return super().compute_mask(t, default_mask)  # torch's code, on draws of its own
        return _clear(default_mask, keep)


def l1_unstructured(module, name, amount, importance_scores=None):
    """torch.nn.utils.prune.l1_unstructured, on the fused selection."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_unstructured(module, name, amount):
    """torch.nn.utils.prune.random_unstructured, on the fused selection."""
    RandomUnstructured.apply(module, name, amount)
    return module


# The classes global_unstructured runs fused, with the compute_mask each had at import: a
# compute_mask replaced later (a subclass, mock.patch) is the user's, so torch's code runs it.
_FUSED = {cls: cls.__dict__["compute_mask"] for cls in
          (L1Unstructured, RandomUnstructured, _torch.L1Unstructured, _torch.RandomUnstructured)}


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """torch.nn.utils.prune.global_unstructured: one ranking over every (module, name) in
    `parameters`, here without concatenating them (module docstring for what differs)."""
    if not isinstance(parameters, Iterable):
        raise TypeError("global_unstructured(): parameters is not an Iterable")
    importance_scores = importance_scores if importance_scores is not None else {}
    if not isinstance(importance_scores, dict):
        raise TypeError("global_unstructured(): importance_scores must be of type dict")
    parameters = list(parameters)
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise TypeError(
            'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`. Found method '
            f"{pruning_method} of type {method.PRUNING_TYPE}")
    fused = type(method) in _FUSED and type(method).__dict__["compute_mask"] is _FUSED[type(method)]
    if not (fused and _global_fused(parameters, method, importance_scores)):
        _torch.global_unstructured(parameters, pruning_method,
                                   importance_scores=importance_scores, **kwargs)


def _global_fused(parameters, method, importance_scores) -> bool:
    """The fused global_unstructured; False, with nothing changed, where torch's code must run."""
    params = [getattr(module, name) for module, name in parameters]
    scores = [importance_scores.get((module, name), p) for (module, name), p in
              zip(parameters, params)]
    olds = [getattr(module, name + "_mask", None) for module, name in parameters]
    if not params or len({(id(m), n) for m, n in parameters}) != len(parameters):
        return False
    device = params[0].device
    for (module, name), p, s, old in zip(parameters, params, scores, olds):
        if not (isinstance(p, torch.Tensor) and isinstance(s, torch.Tensor)
                and not is_dtensor(p) and not is_dtensor(s)
                and s.dtype in _FLOATS and s.numel() == p.numel()
                and p.device == device and s.device == device
                and (old is None or (old.device == device and old.numel() == p.numel()))
                and len(_hooks(module, name)) == (old is not None)):
            return False
    # torch ranks one concatenation, so in the dtype all the scores promote to (exactly)
    dtype = functools.reduce(torch.promote_types, [s.dtype for s in scores])
    flat = [s.detach().reshape(-1).to(dtype).contiguous() for s in scores]
    # torch prunes among the entries whose mask is exactly 1. The selection writes its bool mask
    # into the first bytes of the new mask buffer, which are widened in place after
    buffers = [_mask_buffer(p) for p in params]
    keep = [torch.empty(p.numel(), dtype=torch.bool, device=device) if b is None
            else _bools_in(b) for p, b in zip(params, buffers)]
    for kp, old in zip(keep, olds):
        if old is None:
            kp.fill_(True)
        else:
            torch.eq(old.detach().reshape(-1), 1, out=kp)
    counts = [p.numel() if old is None else None for p, old in zip(params, olds)]
    binary = [True] * len(params)
    pending = [i for i, c in enumerate(counts) if c is None]
    if pending:  # alive entries, and whether the old mask holds only 0 and 1 (one sync)
        sums = torch.stack([torch.stack([keep[i].count_nonzero(), olds[i].count_nonzero()])
                            for i in pending]).tolist()
        for i, (ones, nonzero) in zip(pending, sums):
            counts[i], binary[i] = int(ones), ones == nonzero
    alive = sum(counts)
    k = _compute_nparams_toprune(method.amount, alive)
    _validate_pruning_amount(k, alive)
    if k:
        if isinstance(method, _torch.RandomUnstructured):
            flat = [_random_scores(kp, c, dtype) for kp, c in zip(keep, counts)]
        if not _select(flat, keep, k):
            return False
    del flat
    for (module, name), p, old, is_binary, buffer in zip(parameters, params, olds, binary,
                                                          buffers):
        kp = keep.pop(0).view_as(p)
        if is_binary:
            # torch's new mask, old * (old with the newly pruned entries 0), is keep itself
            # (bool to float through uint8: the same values, several times faster on CPU)
            mask = _widen_(buffer) if buffer is not None else kp.view(torch.uint8).to(p.dtype)
            _reparametrize(module, name, mask.view_as(p))
            continue
        # torch's own code for a mask with other values, which it leaves as they were
        final = old.detach().reshape(-1).to(dtype, copy=True)
        final.masked_fill_(~kp.view(-1) & (final == 1), 0)
        custom_from_mask(module, name, mask=final.view_as(p))
    return True


def _hooks(module, name):
    return [k for k, h in module._forward_pre_hooks.items()
            if isinstance(h, BasePruningMethod) and h._tensor_name == name]


def _mask_buffer(p: torch.Tensor) -> Optional[torch.Tensor]:
    """A new flat `<name>_mask` buffer for p (torch's is of p's dtype), to be filled by
    _widen_; None where p's elements are single bytes, too narrow to widen into."""
    if p.element_size() < 2:
        return None
    return torch.empty(p.numel(), dtype=p.dtype, device=p.device)


def _bools_in(buffer: torch.Tensor) -> torch.Tensor:
    """The first numel bytes of a flat buffer, as bools."""
    return buffer.view(torch.uint8)[:buffer.numel()].view(torch.bool)


def _widen_(buffer: torch.Tensor) -> torch.Tensor:
    """buffer[i] = _bools_in(buffer)[i] for every i, in place: the new mask buffer is the only
    memory the mask takes (new memory is what building torch's state costs; its first touch
    dominates it). Ranges go from the back, each [lo, hi) with lo * size >= hi, so the bytes it
    writes lie after those it reads, and after every byte still to be read."""
    raw, size = buffer.view(torch.uint8), buffer.element_size()
    hi = buffer.numel()
    while hi > 4096:
        lo = -(-hi // size)
        buffer[lo:hi].copy_(raw[lo:hi])
        hi = lo
    buffer[:hi].copy_(raw[:hi].clone())
    return buffer


def _reparametrize(module, name, mask) -> None:
    """What torch's custom_from_mask(module, name, mask) does, step for step as in
    BasePruningMethod.apply (the `<name>_orig` parameter on the first pruning, a CustomFromMask
    added to the tensor's PruningContainer on later ones, the `<name>_mask` buffer, the pruned
    tensor, the hook), given the buffer it computes: `mask`. So it skips torch's mask of ones,
    its copies of the old mask and its multiplications by them. The CustomFromMask holds the
    buffer itself (torch's holds an equal tensor; only its values are ever read, and only when
    it is applied, as it is here)."""
    method = CustomFromMask(mask)
    method._tensor_name = name
    hooks = _hooks(module, name)
    if hooks:
        old = module._forward_pre_hooks.pop(hooks[0])
        container = old if isinstance(old, PruningContainer) else PruningContainer(old)
        container.add_pruning_method(method)
        method = container
    else:
        orig = getattr(module, name)
        module.register_parameter(name + "_orig", orig)
        del module._parameters[name]
    module.register_buffer(name + "_mask", mask)
    setattr(module, name, method.apply_mask(module))
    module.register_forward_pre_hook(method)


def _random_scores(keep: torch.Tensor, alive: int, dtype) -> torch.Tensor:
    """1 - torch.rand of the alive entries, in order (the draws torch makes for them on the CPU,
    where rand fills sequentially), so the smallest scores are torch's largest draws."""
    scores = torch.zeros(keep.numel(), dtype=dtype, device=keep.device)
    scores[keep] = torch.rand(alive, dtype=dtype, device=keep.device).neg_().add_(1)
    return scores
