"""A lottery ticket on disk: one safetensors file (no pickle) holding, per pruned parameter,
  "<name>.mask"      uint8 [ceil(numel / 8)]: the bool mask bit-packed, 1 bit per weight, in
                     numpy.packbits' order (first element in the most significant bit, zero pad)
  "<name>.snapshot"  the rewind-point weights, in their own dtype and shape,
and, per other tensor of the network (biases, norms, running statistics, embeddings),
  "<name>.rewind"    its value at the rewind point, in its own dtype and shape,
with metadata {"format": "lth_fast.ticket", "version", "names" (JSON list), "shapes" (JSON),
"dense" (JSON list of the other tensors' names; absent in files written before tickets held
them),
"sha256" (lth_fast.atomic.content_sha256 of everything else: checked on load; a file written
before it has none and loads unchecked)}. The same contents give the same bytes.
Files are written atomically (a temporary file in the same directory, then os.replace), so a
crash leaves the old ticket or the new one, never half of one."""
from __future__ import annotations

import json
import math
import os
from typing import Mapping, Optional, Sequence

import torch

from ..atomic import check_sha256, save_tensors, tensor_bytes
from .mask_set import MaskSet

FORMAT = "lth_fast.ticket"
MASKS_FORMAT = "lth_fast.masks"
VERSION = "1"
_BIT_VALUES = (128, 64, 32, 16, 8, 4, 2, 1)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """uint8 [ceil(n / 8)]: 8 mask entries per byte, as numpy.packbits(mask.ravel()); computed on
    the mask's device, so only the packed bytes ever cross to the host."""
    flat = mask.reshape(-1).to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    values = torch.tensor(_BIT_VALUES, dtype=torch.uint8, device=flat.device)
    return (flat.view(-1, 8) * values).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: Sequence[int], what: str) -> torch.Tensor:
    """The bool mask of `shape` packed by pack_bits; checks the length and the zero padding."""
    n = math.prod(shape)
    if packed.dtype != torch.uint8 or packed.dim() != 1 or packed.numel() != (n + 7) // 8:
        raise ValueError(f"ticket: {what} must be uint8 [{(n + 7) // 8}] (the bits of "
                         f"{list(shape)}), got {packed.dtype} {list(packed.shape)}")
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    bits = ((packed.unsqueeze(1) >> shifts) & 1).reshape(-1)
    if bits[n:].any():
        raise ValueError(f"ticket: {what} has non-zero padding bits: the file is corrupt")
    return bits[:n].bool().view(tuple(shape))


def _contents(fmt: str, names: Sequence[str], masks: Mapping[str, torch.Tensor],
              snapshot: Optional[Mapping[str, torch.Tensor]],
              dense: Optional[Mapping[str, torch.Tensor]] = None):
    """The tensors and metadata of a ticket (or masks) file, on the CPU."""
    tensors = {}
    for n in names:
        tensors[f"{n}.mask"] = pack_bits(masks[n]).cpu()
        if snapshot is not None:
            tensors[f"{n}.snapshot"] = snapshot[n].detach().to("cpu", copy=True).contiguous()
    metadata = {"format": fmt, "version": VERSION, "names": json.dumps(list(names)),
                "shapes": json.dumps({n: list(masks[n].shape) for n in names})}
    if dense is not None:
        for n, t in dense.items():
            tensors[f"{n}.rewind"] = t.detach().to("cpu", copy=True).contiguous()
        metadata["dense"] = json.dumps(list(dense))
    return tensors, metadata


def _write(path, fmt: str, names: Sequence[str], masks: Mapping[str, torch.Tensor],
           snapshot: Optional[Mapping[str, torch.Tensor]]) -> None:
    save_tensors(path, *_contents(fmt, names, masks, snapshot), checksum=True)


def to_bytes(masks: MaskSet) -> bytes:
    """The ticket file's bytes (the masks file's, when there is no snapshot): for a framework's
    checkpoint, which then holds bytes, never a pickled tensor. The same masks give the same
    bytes (lth_fast.atomic.tensor_bytes)."""
    fmt = MASKS_FORMAT if masks.snapshot is None else FORMAT
    return tensor_bytes(*_contents(fmt, masks.names, masks.masks, masks.snapshot),
                        checksum=True)


def from_bytes(data: bytes, what: str = "checkpoint") -> MaskSet:
    """The MaskSet of to_bytes(...), every part validated as a file's."""
    from safetensors.torch import load

    if not isinstance(data, (bytes, bytearray)) or len(data) < 8:
        raise ValueError(f"ticket: the {what} holds no lth_fast ticket bytes")
    size = int.from_bytes(data[:8], "little")
    try:
        meta = json.loads(bytes(data[8:8 + size])).get("__metadata__") or {}
        tensors = load(bytes(data))
    except Exception as e:
        raise ValueError(f"ticket: the {what}'s ticket bytes are not safetensors: {e}") from e
    fmt = meta.get("format")
    parts = ("mask", "snapshot") if fmt == FORMAT else ("mask",)
    names, masks, snapshot, dense = _decode(meta, set(tensors), tensors.__getitem__,
                                            fmt if fmt == FORMAT else MASKS_FORMAT, parts,
                                            f"the {what}")
    return MaskSet(names, masks, snapshot if fmt == FORMAT else None, dense)


def save(path, masks: MaskSet) -> None:
    """Writes the ticket (the masks, their snapshot, and the other tensors of the network at
    the rewind point when masks.dense holds them) atomically (see the module doc)."""
    if masks.snapshot is None:
        raise RuntimeError("Pruner.save_ticket: a ticket is masks plus the rewind-point "
                           "weights; call snapshot() first")
    save_tensors(path, *_contents(FORMAT, masks.names, masks.masks, masks.snapshot,
                                  masks.dense), checksum=True)


def save_masks(path, masks: MaskSet) -> None:
    """Writes only the bit-packed masks ("<name>.mask", format "lth_fast.masks"), atomically:
    an IMP level's pruning decision, 1 bit per weight."""
    _write(path, MASKS_FORMAT, masks.names, masks.masks, None)


def _read(path, fmt: str, parts: Sequence[str]):
    from safetensors import safe_open

    kind = "ticket" if fmt == FORMAT else "masks"
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{kind}: no such file: {path}")
    try:
        f = safe_open(path, framework="pt", device="cpu")
    except Exception as e:  # safetensors raises its own error type for a corrupt header
        raise ValueError(f"{kind}: {path} is not a readable safetensors file: {e}") from e
    with f:
        return _decode(f.metadata() or {}, set(f.keys()), f.get_tensor, fmt, parts, path)


def _decode(meta, have, get_tensor, fmt: str, parts: Sequence[str], where: str):
    """(names, masks, snapshot) of a file's metadata and tensors, every part validated."""
    kind = "ticket" if fmt == FORMAT else "masks"
    if meta.get("format") != fmt:
        raise ValueError(f"{kind}: {where} is not an lth_fast {kind} file "
                         f"(metadata format={meta.get('format')!r}, want {fmt!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{kind}: {where} has version {meta.get('version')!r}; this "
                         f"lth_fast reads version {VERSION}")
    try:
        names = json.loads(meta["names"])
        shapes = {n: tuple(int(d) for d in s) for n, s in json.loads(meta["shapes"]).items()}
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{kind}: {where} has unreadable names/shapes metadata: {e}") from e
    if (not isinstance(names, list) or set(names) != set(shapes)
            or len(set(names)) != len(names)):
        raise ValueError(f"{kind}: {where}: the names and shapes metadata disagree")
    try:
        dense_names = None if "dense" not in meta else json.loads(meta["dense"])
    except ValueError as e:
        raise ValueError(f"{kind}: {where} has unreadable dense metadata: {e}") from e
    if dense_names is not None and (not isinstance(dense_names, list) or
                                    set(dense_names) & set(names)):
        raise ValueError(f"{kind}: {where}: the dense metadata names pruned tensors")
    want = {f"{n}.{part}" for n in names for part in parts}
    want |= {f"{n}.rewind" for n in dense_names or ()}
    if want != have:
        raise ValueError(f"{kind}: {where}: missing tensors {sorted(want - have)}, "
                         f"unexpected tensors {sorted(have - want)}")
    # a file written with its checksum is checked whole before anything is decoded
    check_sha256({k: get_tensor(k) for k in have}, meta, f"{kind}: {where}")
    masks, snapshot = {}, {}
    for n in names:
        masks[n] = unpack_bits(get_tensor(f"{n}.mask"), shapes[n], f"{n}.mask")
        if "snapshot" not in parts:
            continue
        snap = get_tensor(f"{n}.snapshot")
        if tuple(snap.shape) != shapes[n]:
            raise ValueError(f"{kind}: {n}.snapshot has shape {list(snap.shape)}, but the "
                             f"ticket's mask of {n} has shape {list(shapes[n])}")
        snapshot[n] = snap
    dense = None if dense_names is None else {n: get_tensor(f"{n}.rewind") for n in dense_names}
    return names, masks, snapshot, dense


def load(path) -> MaskSet:
    """The masks, snapshot and (.dense, in files that hold them) the other tensors of a
    ticket, read on the CPU, every part validated."""
    return MaskSet(*_read(path, FORMAT, ("mask", "snapshot")))


def load_masks(path) -> MaskSet:
    """The masks of a save_masks file (no snapshot), read on the CPU, every part validated."""
    names, masks, _, _ = _read(path, MASKS_FORMAT, ("mask",))
    return MaskSet(names, masks)
