"""2:4 semi-structured sparsity for a loaded ticket (load_exported(..., semi_structured=True)).

torch.sparse.to_sparse_semi_structured stores a weight with at most 2 non-zeros in every 4
consecutive inputs at half its size and multiplies it with sparse tensor cores (CUTLASS or
cuSPARSELt): CUDA, compute capability 8.0 (Ampere) or newer, float16/bfloat16. torch has no
such kernel on the CPU. A ticket from magnitude IMP is unstructured and is rarely 2:4; one
pruned with the N:M rule (scope "nm", n=2, m=4) is. The shape limits are CUTLASS's (rows a
multiple of 32, columns of 64), the stricter of the two back ends.

This path has not been run on a GPU by its tests (the test machines have none)."""
from __future__ import annotations

from typing import Dict, List

import torch
from torch import Tensor, nn

DTYPES = (torch.float16, torch.bfloat16)
ROWS, COLS = 32, 64


def is_2_4(mask: Tensor) -> bool:
    """At most 2 kept entries in every group of 4 consecutive entries of a row."""
    if mask.dim() != 2 or mask.shape[1] % 4:
        return False
    return bool((mask.reshape(mask.shape[0], -1, 4).sum(-1) <= 2).all())


def to_semi_structured(model: nn.Module, masks: Dict[str, Tensor], where: str) -> List[str]:
    """Converts in place every Linear weight whose mask is 2:4 and whose shape and dtype the
    kernels take; returns their names. Refuses a CPU model, an older GPU, and a ticket of
    which no weight qualifies (one line each, naming `where`)."""
    p = next(model.parameters())
    if p.device.type != "cuda":
        raise ValueError(f"{where}: semi_structured=True needs a CUDA device: torch has no 2:4 "
                         f"sparse kernel on the CPU (load with device='cuda', compute "
                         f"capability 8.0+)")
    if torch.cuda.get_device_capability(p.device) < (8, 0):
        raise ValueError(f"{where}: semi_structured=True needs compute capability 8.0+ "
                         f"(sparse tensor cores); {p.device} has "
                         f"{torch.cuda.get_device_capability(p.device)}")
    if p.dtype not in DTYPES:
        raise ValueError(f"{where}: semi_structured=True needs float16 or bfloat16 weights, "
                         f"the model is {p.dtype}: export with --dtype float16, or load with "
                         f"dtype=torch.float16")
    from torch.sparse import to_sparse_semi_structured

    done = []
    for mod_name, m in model.named_modules():
        name = f"{mod_name}.weight"
        if not isinstance(m, nn.Linear) or name not in masks or not is_2_4(masks[name]):
            continue
        rows, cols = m.weight.shape
        if rows % ROWS or cols % COLS:
            continue
        m.weight = nn.Parameter(to_sparse_semi_structured(m.weight.detach()),
                                requires_grad=False)
        done.append(name)
    if not done:
        raise ValueError(f"{where}: no Linear weight is 2:4 sparse with rows a multiple of "
                         f"{ROWS} and columns of {COLS} (prune with the N:M rule, n=2, m=4)")
    return done
