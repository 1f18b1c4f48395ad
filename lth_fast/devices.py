"""Whether a device named on a command line can hold a tensor here, checked before any work
starts, so the error names the device instead of surfacing from deep inside torch."""
from __future__ import annotations

import torch


def check_device(device: str) -> None:
    """Raises ValueError naming `device` when it cannot hold a tensor here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r} is not a torch device (cpu, cuda, cuda:N, ...)") \
            from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: no CUDA device is available here (use --device cpu)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: there are only {torch.cuda.device_count()} CUDA "
                         f"devices (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    try:
        torch.empty(1, device=dev)
    except Exception as e:  # another backend that is not built in or has no device
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"device {device!r} is not usable here ({first})") from None
