"""Atomic file writes: a reader (or a restarted run) sees the old file or the new one, never a
torn one. The data goes to a temporary file in the same directory, is flushed to disk, and is
then renamed over the target (rename within one file system is atomic)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Callable


def write_atomic(path, write: Callable[[str], None]) -> None:
    """Calls write(tmp_path) to produce the file, then moves it to `path`."""
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; these are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    write_atomic(path, write)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_tensors(path, tensors, metadata=None) -> None:
    """safetensors.torch.save_file, atomically (contiguous CPU copies of the tensors)."""
    from safetensors.torch import save_file

    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    write_atomic(path, lambda tmp: save_file(cpu, tmp, metadata=metadata))
