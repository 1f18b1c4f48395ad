"""load_exported: an exported ticket file back to a ready nn.Module (format: format.py)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..devices import check_device
from .architecture import build, tied_aliases
from .format import Exported, name_diff, read_exported


def load_exported(path, device="cpu", dtype: Optional[torch.dtype] = None, *,
                  semi_structured: bool = False) -> nn.Module:
    """The ticket stored at `path` (lth-fast export) as a model in eval mode on `device`.

    The pruned weights are their kept values scattered into zeros (pruned entries exactly 0);
    from a float32 file the model equals the ticket it was exported from, bit for bit.
    dtype: None loads the model in the dtype the file stores (a float16 file gives a float16
    model: what was shipped, at half the memory); dtype=torch.float32 (or any float dtype)
    widens every floating tensor instead, e.g. to run on a CPU whose half-precision kernels
    are slow. Batch-norm statistics are stored at full precision and follow the model's dtype.

    semi_structured=True turns each Linear weight whose mask is 2:4 (at most 2 kept in every 4
    consecutive inputs) into torch's semi-structured sparse tensor (semi_structured.py): CUDA
    devices of compute capability 8.0+ only, float16/bfloat16 weights.

    Every part of the file is checked first (format, version, names, shapes, dtypes, counts,
    padding bits): a bad file is a one-line ValueError naming the file and the tensor; a
    device that cannot hold a tensor here is one too, before the file is read."""
    check_device(str(torch.device(device)) if isinstance(device, torch.device) else device)
    ex = read_exported(path)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"load_exported: dtype must be a floating torch.dtype or None, "
                         f"got {dtype!r}")
    try:
        model = build(ex.architecture)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{ex.path}: metadata 'architecture' does not build a model "
                         f"({e})") from None
    _check_against(ex, model)
    state = ex.state_dict()
    for alias, first in tied_aliases(model).items():
        state[alias] = state[first]  # strict loading wants every name the model lists
    model.to(dtype or ex.dtype)
    model.load_state_dict(state, strict=True)  # copies, converting to the model's dtype
    model.to(device).eval()
    if semi_structured:
        from .semi_structured import to_semi_structured
        to_semi_structured(model, {n: m.to(device) for n, m in ex.masks.items()}, ex.path)
    return model


def _check_against(ex: Exported, model: nn.Module) -> None:
    """The file's tensors are exactly the model's (a tied parameter once), in its shapes;
    floating parameters in the file's dtype and buffers in the model's own."""
    aliases = tied_aliases(model)
    target = {k: v for k, v in model.state_dict().items() if k not in aliases}
    have = {**ex.masks, **ex.dense}
    diff = name_diff(set(target), set(have))
    if diff:
        raise ValueError(f"{ex.path}: the tensors do not fit {ex.architecture['model']}: {diff}")
    params = {n for n, _ in model.named_parameters()}
    for n, t in have.items():
        if tuple(t.shape) != tuple(target[n].shape):
            part = ".mask" if n in ex.masks else ""
            raise ValueError(f"{ex.path}: {n}{part} is for shape {list(t.shape)}, the model's "
                             f"{n} has {list(target[n].shape)}")
        if n in ex.masks:
            continue
        want = ex.dtype if (n in params and target[n].is_floating_point()) else target[n].dtype
        if t.dtype != want:
            raise ValueError(f"{ex.path}: {n} is {str(t.dtype).removeprefix('torch.')}, "
                             f"want {str(want).removeprefix('torch.')}")
