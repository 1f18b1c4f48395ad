"""Magnitude keys of a tensor's entries, as docs/semantics.md ranks them: the raw bits with the
sign bit cleared, so -0.0 == +0.0, inf is the largest, and the integer order of the keys is
the order of the magnitudes. NaN keys lie above the key of inf."""
from __future__ import annotations

import torch

# dtype -> (integer view, bits of a key, key of +inf)
_KEYS = {
    torch.float32: (torch.int32, 31, 0x7F800000),
    torch.float16: (torch.int16, 15, 0x7C00),
    torch.bfloat16: (torch.int16, 15, 0x7F80),
    torch.float64: (torch.int64, 63, 0x7FF0000000000000),
}


def key_bits(dtype: torch.dtype) -> int:
    return _KEYS[dtype][1]


def key_end(dtype: torch.dtype) -> int:
    """One past the largest key of any bit pattern of dtype."""
    return 1 << _KEYS[dtype][1]


def keys_of(t: torch.Tensor) -> torch.Tensor:
    """The keys of t's entries, flat, in an integer tensor of t's width."""
    view, bits, _ = _KEYS[t.dtype]
    return t.detach().reshape(-1).view(view) & ((1 << bits) - 1)


def has_nan(keys: torch.Tensor, dtype: torch.dtype) -> bool:
    return bool((keys > _KEYS[dtype][2]).any()) if keys.numel() else False


def magnitude(key: int, dtype: torch.dtype) -> float:
    """The magnitude whose key is `key`."""
    view = _KEYS[dtype][0]
    return float(torch.tensor([key], dtype=torch.int64).to(view).view(dtype).item())
