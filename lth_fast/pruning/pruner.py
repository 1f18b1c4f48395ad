"""Pruner: lottery-ticket pruning for any training loop, without reparametrizing the model.

It keeps one torch.bool mask per pruned parameter (the model's parameters and state_dict keys
stay as they are) and a snapshot of the whole network at the rewind point: the pruned weights,
and every other parameter and buffer (biases, norms, running statistics, embeddings). A round
of IMP:

    pruner = Pruner(model); pruner.snapshot()            # iteration 0 (or k, for late rewinding)
    opt = MaskedSGD(model.parameters(), lr=0.1, momentum=0.9, masks=pruner)
    train(model, opt)                                     # pruned weights stay exactly 0
    pruner.prune(0.2); pruner.rewind(opt)                 # the network at the rewind point:
                                                          # weights = snapshot * mask, the rest
                                                          # as they were; a fresh optimizer

With any other optimizer, pruner.attach(opt) keeps the pruned entries of the weights, the
gradients and the optimizer's state at 0 through the optimizer's step hooks. Masks follow their weights: when
the model moves to another device, the masks move with it on the next call.

A learning-rate schedule is rewound with the weights when snapshot() records it:
pruner.snapshot(scheduler=sched) at the rewind point, then pruner.rewind(opt, scheduler=sched)
puts the schedule (and each param group's lr) back where it was.

A model built on the meta device can be given to Pruner before it is materialised
(model.to_empty(device=...) and an initialisation); the Pruner finds the new parameters by
name. Snapshot, prune, apply and rewind need the weights' values, so they come after that."""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..ops import NM, PruneStats
from ..ops.api import rewind_
from ..ops.dtensors import is_dtensor, local
from ..ops.nm import read_scope
from . import rank, ticket, ticket_io, torch_prune
from .attach import AttachedMasks, masker, unwrap_optimizer
from .mask_set import MaskSet, ParamMasks, PruneReport
from .schedule import SchedulePoint
from .state import dense_state, placed, restore_dense
from .selection import DEFAULT_TYPES, plain_module, select_parameters


class Pruner:
    """Chooses the tensors to prune (see lth_fast.pruning.selection for include / exclude /
    types / parameter_names) and owns their MaskSet: the masks, all True at first, and the
    rewind snapshot."""

    def __init__(self, model: nn.Module, *, include=None, exclude=None,
                 types=DEFAULT_TYPES, parameter_names=("weight",)) -> None:
        model = plain_module(model)
        names = select_parameters(model, include=include, exclude=exclude, types=types,
                                  parameter_names=parameter_names)
        self._attach(model, names)

    def _attach(self, model: nn.Module, names: Sequence[str]) -> None:
        self.model = model = plain_module(model)
        self.mask_set = MaskSet.all_alive(names, [local(p) for p in self._lookup(names)])
        self._schedule: Optional[SchedulePoint] = None  # recorded by snapshot(scheduler=...)
        # the other tensors at the rewind point (snapshot(scope="all")): this rank's part of each
        self._dense: Optional[Dict[str, Tensor]] = None

    @classmethod
    def _for_names(cls, model: nn.Module, names: Sequence[str]) -> "Pruner":
        self = cls.__new__(cls)
        self._attach(model, names)
        return self

    @property
    def names(self) -> Tuple[str, ...]:
        """The qualified names of the pruned parameters, in model order."""
        return self.mask_set.names

    @property
    def masks(self) -> Dict[str, Tensor]:
        """{qualified parameter name: torch.bool mask}, the tensors the optimizers read."""
        return self.mask_set.masks

    def __repr__(self) -> str:
        return (f"Pruner({len(self.names)} tensors, {sum(m.numel() for m in self.masks.values()):,}"
                f" weights, density {100 * self.density:.2f}%)")

    # -- the parameters and their masks ---------------------------------------------------------
    def _params(self) -> List[Tensor]:
        """The pruned parameters, looked up by name now (they may have been replaced), with
        values: a parameter still on meta is an error that says what to do."""
        params = self._lookup(self.names)
        for n, p in zip(self.names, params):
            if p.is_meta:
                raise RuntimeError(f"Pruner: {n} is on the meta device and has no values yet; "
                                   f"materialise the model first (model.to_empty(device=...), "
                                   f"then initialise its weights): the Pruner then finds the "
                                   f"new parameters by name")
        return params

    def _lookup(self, names: Sequence[str]) -> List[Tensor]:
        out = []
        for n in names:
            try:
                out.append(self.model.get_parameter(n))
            except AttributeError as e:
                raise RuntimeError(f"Pruner: the model has no parameter {n!r} any more ({e}); "
                                   f"after to_torch_prune use Pruner.from_torch_prune") from e
        return out

    def _resolved(self):
        """[(name, param, mask)], each mask moved to its param's device if the model moved."""
        out = []
        for n, p in zip(self.names, self._params()):
            m, lp = self.masks[n], local(p)  # a DTensor's mask is its local shard's
            if m.shape != lp.shape:
                raise RuntimeError(f"Pruner: {n} now has shape {list(lp.shape)} but its mask "
                                   f"has shape {list(m.shape)}")
            if m.device != lp.device:
                m = self.masks[n] = m.to(lp.device)
            out.append((n, p, m))
        return out

    def param_masks(self) -> ParamMasks:
        """{parameter: mask}, as MaskedSGD(masks=...) takes them."""
        return ParamMasks(self._resolved())

    def to(self, device) -> "Pruner":
        """Moves the masks, and the snapshot unless snapshot(device=...) placed it elsewhere."""
        for n in self.names:
            self.masks[n] = self.masks[n].to(device)
        ms = self.mask_set
        if ms.snapshot is not None and ms.snapshot_device is None:
            ms.snapshot = {n: s.to(device) for n, s in ms.snapshot.items()}
            if self._dense is not None:
                self._dense = {n: t.to(device) for n, t in self._dense.items()}
        return self

    # -- the kernels ------------------------------------------------------------------------------
    @torch.no_grad()
    def _write(self, params: Sequence[Tensor], sources: Sequence[Tensor],
               masks: Sequence[Tensor]) -> None:
        """params = source where mask else 0: one fused rewind_ per (device, dtype); a
        non-contiguous param (channels_last) goes through torch.where instead."""
        groups: Dict[tuple, list] = {}
        for p, s, m in zip(params, sources, masks):
            p, s = local(p), local(s)  # a DTensor through its local shard
            s = s.to(p.device, p.dtype)
            if not p.is_contiguous():
                p.copy_(torch.where(m, s, torch.zeros((), dtype=p.dtype, device=p.device)))
                continue
            ps, ss, ms = groups.setdefault((p.device, p.dtype), ([], [], []))
            ps.append(p.detach())
            ss.append(s.contiguous())
            ms.append(m.contiguous())
        for ps, ss, ms in groups.values():
            rewind_(ps, ss, ms)

    # -- the LTH operations -----------------------------------------------------------------------
    @torch.no_grad()
    def snapshot(self, device=None, scheduler=None, scope: str = "all") -> None:
        """Copies the network as the rewind point (iteration 0, or k for late rewinding), on
        `device` (default: beside each tensor; e.g. "cpu" to save accelerator memory):
        scope="all" (the default) every parameter and buffer of the model, which rewind()
        restores whole; scope="pruned" the pruned weights alone, for a caller that keeps the
        rest itself (e.g. to save memory at scale), whose other tensors rewind() then leaves
        as they are. With a learning-rate scheduler, also records its state and its optimizer's
        lrs, which rewind(scheduler=...) restores; a snapshot without one forgets any recorded
        before."""
        if scope not in ("all", "pruned"):
            raise ValueError(f"Pruner.snapshot: scope must be 'all' or 'pruned', got {scope!r}")
        device = None if device is None else torch.device(device)
        schedule = None if scheduler is None else SchedulePoint(scheduler)
        params = [p.detach() for p in self._params()]
        old = self.mask_set.snapshot or {}
        dst, kept = [], {}
        for n, p in zip(self.names, params):
            lp = local(p)
            where = device or lp.device
            s = old.get(n)
            ls = None if s is None else local(s)
            if ls is None or ls.shape != lp.shape or ls.dtype != lp.dtype or ls.device != where:
                ls = torch.empty(lp.shape, dtype=lp.dtype, device=where)
            dst.append(ls)
            # A DTensor's snapshot is one too, with its placements (its shard on each rank).
            kept[n] = ls if not is_dtensor(p) else type(p).from_local(
                ls, p.device_mesh, p.placements, run_check=False, shape=p.shape,
                stride=p.stride())
        torch._foreach_copy_(dst, [local(p) for p in params])
        self.mask_set.snapshot = kept
        self.mask_set.snapshot_device = device
        self._dense = dense_state(self.model, self.names, device) if scope == "all" else None
        self._schedule = schedule

    @property
    def rewind_state(self) -> Dict[str, Tensor]:
        """{state_dict name: this rank's part at the rewind point} of every tensor snapshot()
        recorded (the pruned weights unmasked); empty before a snapshot. No copy."""
        out = dict(self._dense or {})
        out.update(self.mask_set.snapshot or {})
        return out

    def load_rewind_state(self, tensors: Mapping[str, Tensor]) -> None:
        """Sets the recorded tensors that are not pruned (a checkpoint's, e.g. the callbacks'
        state): every one of the model's, each of its part's shape, checked before anything
        changes (lth_fast.pruning.state.placed)."""
        self._dense = placed(self.model, self.names, tensors)

    def prune(self, amount=None, scope: Union[str, NM] = "global",
              per_layer: Optional[Mapping[str, Union[float, int]]] = None, *,
              scores: Optional[rank.Scores] = None, verify: bool = False,
              **deprecated) -> PruneStats:
        """Prunes the `amount` smallest-|w| alive weights (a fraction of the alive ones, or an int
        count) ranked over all tensors (scope="global") or per tensor (scope="layer", where
        per_layer={name: amount} overrides `amount`, e.g. half rate for the output layer), or
        keeps the n largest |w| of every m consecutive input weights (scope=NM(n, m), no amount;
        docs/semantics.md, "N:M selection"), then zeroes the pruned weights. Returns what
        lth_fast.prune_ did.

        scores: rank these instead of |w| ({name: tensor}, one per pruned tensor, or a list in
        self.names order; each of its weight's shape, float), with the same fused prune_: the
        smallest |score| goes first, ties to the earlier position, so k is exact for every
        criterion (random pruning: seeded random scores). A sharded weight's score may be its
        local shard's or the full tensor's (cut to this rank's rows). lth_fast.pruning.rank.

        Sharded parameters (FSDP2's DTensors) are ranked across the ranks of their mesh, as
        one model (lth_fast.distributed.prune_; every rank calls prune). Replicated ones (DDP)
        select on each rank alone; verify=True then checks that every rank's masks agree. The
        old scope="nm", n=, m= works for one release, with a DeprecationWarning."""
        rule = read_scope("Pruner.prune", amount, scope, deprecated)
        items = self._resolved()
        masks = [mask for _, _, mask in items]
        ranked, label = self._ranked(items, scores, "Pruner.prune")
        stats = rank.select("Pruner.prune", self.names, masks, ranked, label, amount,
                            rule or scope, per_layer, verify)
        weights = [p.detach() for _, p, _ in items]
        self._write(weights, weights, masks)
        return stats

    def draw(self, amount=None, scope: Union[str, NM] = "global",
             per_layer: Optional[Mapping[str, Union[float, int]]] = None, *,
             scores: Optional[rank.Scores] = None, into: Optional[Dict[str, Tensor]] = None,
             **deprecated) -> Dict[str, Tensor]:
        """The masks prune(...) with the same arguments would leave now, with neither this
        pruner's masks nor the weights changed: the masks are copied into `into` ({name: bool
        tensor like the mask}, reused from call to call, e.g. by an early-bird monitor; default
        new tensors) and the selection runs there. No weight is copied. Bad arguments raise
        before `into` is written, except a NaN score, which the op finds after the copy."""
        rule = read_scope("Pruner.draw", amount, scope, deprecated)
        items = self._resolved()
        if into is None:
            into = {name: torch.empty_like(mask) for name, _, mask in items}
        for name, _, mask in items:
            scratch = into.get(name)
            if (not isinstance(scratch, Tensor) or scratch.shape != mask.shape
                    or scratch.dtype != torch.bool or scratch.device != mask.device):
                raise ValueError(f"Pruner.draw: into[{name!r}] must be a torch.bool tensor of "
                                 f"shape {list(mask.shape)} on {mask.device}")
        ranked, label = self._ranked(items, scores, "Pruner.draw")  # checked before writing
        for name, _, mask in items:
            into[name].copy_(mask)
        rank.select("Pruner.draw", self.names, [into[name] for name, _, _ in items], ranked,
                    label, amount, rule or scope, per_layer, False)
        return into

    def _ranked(self, items, scores: Optional[rank.Scores], op: str):
        """(what the selection ranks, how errors name it): the weights, or the checked scores."""
        weights = [p.detach() for _, p, _ in items]
        if scores is None:
            return weights, None
        return rank.read_scores(op, self.names, weights, scores)

    def apply(self) -> None:
        """Zeroes the pruned weights (one fused pass): call it after any optimizer's step."""
        items = self._resolved()
        params = [p.detach() for _, p, _ in items]
        self._write(params, params, [m for _, _, m in items])

    def attach(self, optimizer, zero_grads: Optional[bool] = None) -> AttachedMasks:
        """Keeps the pruned entries at exactly 0 under any torch optimizer (or a Lightning or
        Accelerate wrapper of one), through its step hooks: pruned gradients are zeroed before
        each step (by default unless the optimizer is one of torch's elementwise ones, such as
        AdamW, which need no such pass),
        and the weights and every state tensor of their shape after it and after
        load_state_dict (lth_fast.pruning.attach). Returns a handle; .remove() detaches."""
        return AttachedMasks(self, optimizer, zero_grads)

    def masker(self) -> Callable[[], None]:
        """apply() with the parameters and masks looked up once: a callable for the end of every
        optimizer step in a training loop (about half the cost of apply() on small models).
        Make a new one after moving the model or replacing its parameters."""
        return masker(self._resolved())

    def rewind(self, optimizer: Optional[torch.optim.Optimizer] = None,
               scheduler=None) -> None:
        """The network at the rewind point: pruned weights = snapshot where mask else 0 (the
        snapshot is copied to the weights' device if it lives elsewhere), and every other
        parameter and buffer as snapshot(scope="all") recorded it. With an optimizer, its state (momentum buffers, Adam moments
        and steps) is cleared, as for a fresh optimizer; its param_groups are kept. With a
        scheduler, the schedule goes back to the state snapshot(scheduler=...) recorded, and
        its optimizer's lrs with it (so training replays the schedule from the rewind point);
        without one, the lrs stay where training left them."""
        snapshot = self.mask_set.snapshot
        if snapshot is None:
            raise RuntimeError("Pruner.rewind: no snapshot; call snapshot() at the rewind point")
        if optimizer is not None:
            optimizer = unwrap_optimizer(optimizer, "Pruner.rewind")
        if scheduler is not None:
            if self._schedule is None:
                raise ValueError("Pruner.rewind: the snapshot recorded no scheduler; take it "
                                 "with snapshot(scheduler=...) at the rewind point")
            self._schedule.check(scheduler, optimizer)
        items = self._resolved()
        self._write([p.detach() for _, p, _ in items], [snapshot[n] for n, _, _ in items],
                    [m for _, _, m in items])
        if self._dense is not None:
            restore_dense(self.model, self._dense)
        if optimizer is not None:
            optimizer.state.clear()
        if scheduler is not None:
            self._schedule.restore(scheduler)

    # -- how much is left -------------------------------------------------------------------------
    def report(self) -> PruneReport:
        return self.mask_set.report()

    @property
    def density(self) -> float:
        """The fraction of the pruned tensors' weights still alive."""
        return self.mask_set.density

    def sparsity(self) -> float:
        return 1.0 - self.density

    # -- state and files ---------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Tensor]:
        """{"<name>.mask": mask} plus {"<name>.snapshot": weights} once a snapshot is taken."""
        return self.mask_set.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Tensor]) -> None:
        """Loads masks (in place, so optimizers holding them see the change) and the snapshot
        (or none, if the state_dict has none); everything is checked before anything changes."""
        self.mask_set.load_state_dict(
            state_dict, {n: local(p) for n, p in zip(self.names, self._lookup(self.names))})
        self._dense = None  # a state_dict holds the pruned tensors' snapshot alone

    def save_ticket(self, path) -> None:
        """Writes the ticket atomically: the masks (bit-packed), the pruned weights' snapshot,
        and the other tensors of the network at the rewind point (after snapshot(scope="all")),
        with a checksum of the whole (lth_fast.pruning.ticket).

        With sharded parameters (FSDP2) every rank calls it: the shards are gathered one
        tensor at a time and rank 0 writes one unsharded ticket, the same file a single
        process writes, so it loads at any world size (restore_ticket takes each rank's part).
        """
        ticket_io.save(self, path)

    def restore_ticket(self, path, rewind: bool = True) -> "Pruner":
        """Loads a ticket into this pruner (every part checked first): its masks, its snapshot
        and the other tensors of the network at the rewind point; then, with rewind=True (the
        default), rewinds the model to it, so the model is the ticket ready to train (pruned
        weights = snapshot x mask, everything else as the file holds it). A ticket file written
        before tickets held the other tensors loads with a warning saying so: rewind() then
        sets the pruned weights alone. A model still on the meta device is rewound by rewind()
        once it is materialised. With sharded parameters, every rank reads the file and keeps
        its own part of each tensor."""
        return ticket_io.restore(self, path, rewind)

    @classmethod
    def load_ticket(cls, path, model: nn.Module) -> "Pruner":
        """A Pruner over `model` for the tensors of a ticket file, with its masks and snapshot,
        and `model` rewound to the ticket (restore_ticket): ready to train."""
        model = plain_module(model)
        names = ticket.load(path).names
        missing = [n for n in names if n not in dict(model.named_parameters())]
        if missing:
            raise ValueError(f"ticket {path}: the model has no parameters {missing}")
        return cls._for_names(model, names).restore_ticket(path)

    def to_torch_prune(self, model: Optional[nn.Module] = None) -> nn.Module:
        """Applies the masks with torch.nn.utils.prune.custom_from_mask (weight_orig and
        weight_mask) to `model` (default: this pruner's, which it then no longer drives)."""
        model = self.model if model is None else model
        torch_prune.apply_masks(plain_module(model), self.mask_set)
        return model

    @classmethod
    def from_torch_prune(cls, model: nn.Module) -> "Pruner":
        """A Pruner holding the masks of a model pruned with torch.nn.utils.prune, whose
        reparametrization is removed (weight = weight_orig * mask becomes the parameter)."""
        model = plain_module(model)
        found = torch_prune.remove_masks(model)
        self = cls._for_names(model, found.names)
        self.load_state_dict(found.state_dict())
        return self

