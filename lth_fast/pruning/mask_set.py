"""MaskSet: what a Pruner owns. One torch.bool mask per pruned parameter, by qualified name
(all True at first), and the rewind snapshot of the same parameters once one is taken. Ticket
files (lth_fast.pruning.ticket) and torch.nn.utils.prune interop (lth_fast.pruning.torch_prune)
are functions of a MaskSet."""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import torch
from torch import Tensor


class PruneReport(list):
    """report() rows ({name, shape, alive, total, remaining (%)}); str() is a printable table."""

    def __str__(self) -> str:
        alive, total = sum(r["alive"] for r in self), sum(r["total"] for r in self)
        rows = [(r["name"], str(r["shape"]), f"{r['alive']:,}", f"{r['total']:,}",
                 f"{r['remaining']:.2f}%") for r in self]
        rows.append(("total", "", f"{alive:,}", f"{total:,}",
                     f"{100.0 * alive / total if total else 100.0:.2f}%"))
        head = ("name", "shape", "alive", "total", "remaining")
        width = [max(len(x[i]) for x in rows + [head]) for i in range(5)]
        fmt = lambda x: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(x, width)))
        return "\n".join([fmt(head)] + [fmt(x) for x in rows])


class ParamMasks(dict):
    """{parameter: mask} that also knows each parameter's qualified name (for messages)."""

    def __init__(self, items):
        super().__init__((p, m) for _, p, m in items)
        self._items = items  # names looked up only for a message, not at every step

    def name_of(self, param: Tensor) -> str:
        return next((n for n, p, _ in self._items if p is param), "?")


class MaskSet:
    def __init__(self, names: Sequence[str], masks: Mapping[str, Tensor],
                 snapshot: Optional[Mapping[str, Tensor]] = None,
                 dense: Optional[Mapping[str, Tensor]] = None) -> None:
        self.names = tuple(names)
        # the other tensors of the network at the rewind point, as a ticket file carries them
        # (None: a file written before tickets held them, or masks alone)
        self.dense: Optional[Dict[str, Tensor]] = None if dense is None else dict(dense)
        self.masks: Dict[str, Tensor] = {n: masks[n] for n in self.names}
        self.snapshot: Optional[Dict[str, Tensor]] = (
            None if snapshot is None else {n: snapshot[n] for n in self.names})
        self.snapshot_device: Optional[torch.device] = None  # None: beside the weights

    @classmethod
    def all_alive(cls, names: Sequence[str], params: Sequence[Tensor]) -> "MaskSet":
        """All-True masks beside the params; a param on meta (a model not yet materialised)
        gets a CPU mask, which moves to the param's device once the model has one."""
        return cls(names, {n: torch.ones(p.shape, dtype=torch.bool,
                                         device="cpu" if p.is_meta else p.device)
                           for n, p in zip(names, params)})

    # -- state_dict ----------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Tensor]:
        """{"<name>.mask": mask} plus {"<name>.snapshot": weights} once a snapshot is taken."""
        out = {f"{n}.mask": self.masks[n] for n in self.names}
        if self.snapshot is not None:
            out.update({f"{n}.snapshot": self.snapshot[n] for n in self.names})
        return out

    def load_state_dict(self, state_dict: Mapping[str, Tensor],
                        params: Mapping[str, Tensor]) -> None:
        """Loads masks (in place, so optimizers holding them see the change) and the snapshot
        (or none, if the state_dict has none) for the parameters `params` {name: param};
        everything is checked before anything changes."""
        has_snap = any(k.endswith(".snapshot") for k in state_dict)
        want = {f"{n}.{part}" for n in self.names
                for part in (("mask", "snapshot") if has_snap else ("mask",))}
        if set(state_dict) != want:
            have = set(state_dict)
            raise ValueError(f"Pruner.load_state_dict: missing keys {sorted(want - have)}, "
                             f"unexpected keys {sorted(have - want)}")
        for key, t in state_dict.items():
            n = key.rsplit(".", 1)[0]
            if not isinstance(t, Tensor) or t.shape != params[n].shape:
                got = list(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"Pruner.load_state_dict: {key} must be a tensor of shape "
                                 f"{list(params[n].shape)}, got {got}")
            if key.endswith(".mask") and t.dtype != torch.bool:
                raise TypeError(f"Pruner.load_state_dict: {key} must be torch.bool, got {t.dtype}")
        for n in self.names:
            self.masks[n].copy_(state_dict[f"{n}.mask"])
        self.snapshot = None
        if has_snap:
            self.snapshot = {n: state_dict[f"{n}.snapshot"].detach().to(
                self.snapshot_device or self._beside(n, params[n]), copy=True)
                for n in self.names}

    def _beside(self, name: str, param: Tensor) -> torch.device:
        """Where a tensor of `param` with values lives: its device, or its mask's if on meta."""
        return self.masks[name].device if param.is_meta else param.device

    # -- how much is left ----------------------------------------------------------------------
    def report(self) -> PruneReport:
        rows = PruneReport()
        for n in self.names:
            m = self.masks[n]
            alive, total = int(m.count_nonzero()), m.numel()
            rows.append({"name": n, "shape": list(m.shape), "alive": alive, "total": total,
                         "remaining": 100.0 * alive / total if total else 100.0})
        return rows

    @property
    def density(self) -> float:
        """The fraction of the masked weights still alive."""
        total = sum(m.numel() for m in self.masks.values())
        return sum(int(m.count_nonzero()) for m in self.masks.values()) / total if total else 1.0
