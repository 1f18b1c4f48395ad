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


CHECKSUM_KEY = "sha256"   # the metadata entry that holds a file's content_sha256


def content_sha256(tensors, metadata=None) -> str:
    """SHA-256 of a safetensors file's contents, not its bytes: its metadata (sorted, without
    CHECKSUM_KEY) and each tensor (name, dtype, shape, bytes) in name order. So a file whose
    header safetensors wrote in another order has the same sum, and a changed byte of any
    value or tensor does not."""
    import hashlib

    import torch

    h = hashlib.sha256()
    meta = {k: v for k, v in (metadata or {}).items() if k != CHECKSUM_KEY}
    h.update(json.dumps(sorted(meta.items())).encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()
                 .tobytes())
    return h.hexdigest()


def check_sha256(tensors, metadata, where: str) -> bool:
    """Whether the file's contents match the CHECKSUM_KEY it carries (False: it carries none,
    a file written before checksums); a mismatch is a one-line ValueError naming `where`."""
    want = (metadata or {}).get(CHECKSUM_KEY)
    if want is None:
        return False
    if content_sha256(tensors, metadata) != want:
        raise ValueError(f"{where} does not match its own checksum: the file was changed or "
                         f"damaged after it was written")
    return True


def _canonical(tensors, metadata, checksum: bool):
    """(header, raw, start): safetensors' bytes `raw` of the tensors, and its header written
    again with sorted keys, padded with spaces to 8 bytes as safetensors pads it; the data
    section is raw[start:], left as it is."""
    from safetensors.torch import save

    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    if checksum:
        metadata = {**(metadata or {}), CHECKSUM_KEY: content_sha256(cpu, metadata)}
    raw = save(cpu, metadata=metadata)
    size = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8:8 + size]), sort_keys=True,
                        separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header, raw, 8 + size


def tensor_bytes(tensors, metadata=None, checksum: bool = False) -> bytes:
    """A safetensors file's bytes (contiguous CPU copies of the tensors), the same bytes for the
    same tensors and metadata: safetensors writes its JSON header in no fixed order (its
    metadata is a hash map), so the header is written again with sorted keys. checksum=True
    adds the contents' content_sha256 to the metadata (check_sha256 verifies it)."""
    header, raw, start = _canonical(tensors, metadata, checksum)
    return header + raw[start:]


def save_tensors(path, tensors, metadata=None, checksum: bool = False) -> None:
    """A safetensors file of `tensors` (tensor_bytes: the same bytes for the same contents,
    with its own checksum if asked), written atomically; the data section goes to the file
    from safetensors' own buffer, without another copy."""
    header, raw, start = _canonical(tensors, metadata, checksum)
    write_atomic(path, lambda tmp: write_bytes(tmp, header, memoryview(raw)[start:]))


def write_bytes(path: str, *parts) -> None:
    """Writes the byte strings `parts` to `path`, one after the other (not atomically:
    write_atomic's temporary file)."""
    with open(path, "wb") as f:
        for part in parts:
            f.write(part)
