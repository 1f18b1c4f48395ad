"""The exported-ticket file: one safetensors file (no pickle) that rebuilds a trained ticket
without its run directory or its data set.

Tensors:
  "<name>.mask"    uint8 [ceil(numel / 8)], per pruned weight: its mask bit-packed
                   (lth_fast.pruning.ticket.pack_bits: numpy.packbits order, zero padding)
  "<name>.values"  1-D [popcount(mask)]: only the kept weights, in mask order (the row-major
                   positions where the mask is True), in the file's dtype
  "<name>"         every tensor that was never pruned (biases, norms, embeddings) under its
                   state_dict name: floating parameters in the file's dtype, buffers (batch-norm
                   statistics, counters) as the model holds them
A "<name>.mask" key cannot collide with a dense name: "<name>" is a parameter, which has no
children. A tied parameter (a GPT's head = its token embedding) is stored once, under its first
name.

Metadata (all strings, as safetensors requires):
  format "lth_fast.exported", version "1", lth_fast_version,
  architecture  JSON: {"model", "input_shape", "num_classes"} for the image models,
                {"model": "gpt", "vocab_size", "block_size", "n_layer", "n_head", "n_embd"}
  dtype         float32 | float16 | bfloat16
  pruned        JSON [[name, shape], ...] in file order; dense: JSON [name, ...]
  level, density (kept / total over the pruned weights), dataset: where the ticket came from
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from ..atomic import check_sha256
from ..pruning.ticket import unpack_bits

FORMAT, VERSION = "lth_fast.exported", "1"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MASK, VALUES = ".mask", ".values"


@dataclass
class Exported:
    """A validated exported-ticket file, read on the CPU."""
    path: str
    architecture: dict
    dtype: torch.dtype
    masks: Dict[str, Tensor]           # name -> bool mask, in file order
    values: Dict[str, Tensor]          # name -> kept values (1-D)
    dense: Dict[str, Tensor]
    info: dict = field(default_factory=dict)  # level, density, dataset, lth_fast_version

    def weight(self, name: str) -> Tensor:
        """The pruned weight `name` as a dense tensor: its kept values scattered into zeros."""
        mask = self.masks[name]
        w = torch.zeros(mask.shape, dtype=self.dtype)
        w[mask] = self.values[name]  # boolean assignment fills the True positions row-major
        return w

    def state_dict(self) -> Dict[str, Tensor]:
        return {**{n: self.weight(n) for n in self.masks}, **self.dense}


def dtype_of(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"--dtype {name!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[name]


def encode(architecture: dict, dtype_name: str, masks: Dict[str, Tensor],
           weights: Dict[str, Tensor], dense: Dict[str, Tensor], info: dict,
           lth_fast_version: str) -> Tuple[Dict[str, Tensor], Dict[str, str]]:
    """(tensors, metadata) of an exported file. `dense` holds tensors already in the dtype they
    are to be stored in; the kept values of `weights` are cast to `dtype_name`."""
    from ..pruning.ticket import pack_bits

    dtype = dtype_of(dtype_name)
    tensors: Dict[str, Tensor] = {}
    for n, mask in masks.items():
        tensors[n + MASK] = pack_bits(mask).cpu()
        tensors[n + VALUES] = weights[n].detach()[mask].to("cpu", dtype).contiguous()
    for n, t in dense.items():
        tensors[n] = t.detach().to("cpu").contiguous()
    meta = {"format": FORMAT, "version": VERSION, "lth_fast_version": lth_fast_version,
            "architecture": json.dumps(architecture), "dtype": dtype_name,
            "pruned": json.dumps([[n, list(m.shape)] for n, m in masks.items()]),
            "dense": json.dumps(list(dense)),
            **{k: str(v) for k, v in info.items()}}
    return tensors, meta


def read_exported(path) -> Exported:
    """The file at `path`, every part checked; anything wrong is a one-line ValueError naming
    the file (and the tensor), a missing file a FileNotFoundError."""
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        f = safe_open(path, framework="pt", device="cpu")
    except Exception as e:  # safetensors' own error types: a truncated or foreign header
        raise _not_safetensors(path, e) from None
    with f:
        meta = f.metadata() or {}
        _check_header(path, meta)
        try:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:
            raise _not_safetensors(path, e) from None
    check_sha256(tensors, meta, path)   # files written with their checksum, checked whole
    return _decode(path, meta, tensors)


def name_diff(want: set, have: set) -> str:
    """'missing [...], unexpected [...]' (the parts that apply), or '' when equal."""
    parts = [f"{what} tensors {sorted(names)}" for what, names in
             (("missing", want - have), ("unexpected", have - want)) if names]
    return ", ".join(parts)


def _not_safetensors(path: str, e: BaseException) -> ValueError:
    text = str(e).strip().splitlines()
    return ValueError(f"{path} is truncated or not a safetensors file "
                      f"({text[0] if text else type(e).__name__})")


def _check_header(path: str, meta: dict) -> None:
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an exported lth_fast ticket (metadata format="
                         f"{meta.get('format')!r}, want {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise ValueError(f"{path} has format version {meta.get('version')!r}; this lth_fast "
                         f"reads version {VERSION}")
    if meta.get("dtype") not in DTYPES:
        raise ValueError(f"{path}: metadata dtype {meta.get('dtype')!r} is not one of "
                         f"{', '.join(DTYPES)}")


def _json(path: str, meta: dict, key: str, check) -> object:
    try:
        value = json.loads(meta[key])
        ok = check(value)
    except (KeyError, ValueError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"{path}: metadata {key!r} is missing or malformed")
    return value


def _is_shape(s) -> bool:
    return isinstance(s, list) and all(isinstance(d, int) and d >= 0 for d in s)


def _decode(path: str, meta: dict, tensors: Dict[str, Tensor]) -> Exported:
    arch = _json(path, meta, "architecture",
                 lambda a: isinstance(a, dict) and isinstance(a.get("model"), str))
    pruned: List = _json(path, meta, "pruned", lambda p: isinstance(p, list) and all(
        isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and _is_shape(e[1])
        for e in p))
    dense_names: List = _json(path, meta, "dense", lambda d: isinstance(d, list) and all(
        isinstance(n, str) for n in d))
    names = [n for n, _ in pruned]
    want = [n + part for n in names for part in (MASK, VALUES)] + dense_names
    if len(set(want)) != len(want):
        raise ValueError(f"{path}: metadata 'pruned' and 'dense' name a tensor twice")
    diff = name_diff(set(want), set(tensors))
    if diff:
        raise ValueError(f"{path}: {diff}")
    dtype = DTYPES[meta["dtype"]]
    masks, values = {}, {}
    for n, shape in pruned:
        try:
            masks[n] = unpack_bits(tensors[n + MASK], shape, n + MASK)
        except ValueError as e:  # unpack_bits names the tensor; the file is named here
            raise ValueError(f"{path}: {str(e).removeprefix('ticket: ')}") from None
        v, kept = tensors[n + VALUES], int(masks[n].sum())
        if v.dtype != dtype or v.dim() != 1:
            raise ValueError(f"{path}: {n}{VALUES} must be 1-D {meta['dtype']}, got "
                             f"{str(v.dtype).removeprefix('torch.')} {list(v.shape)}")
        if v.numel() != kept:
            raise ValueError(f"{path}: {n}{VALUES} holds {v.numel()} values, but {n}{MASK} "
                             f"keeps {kept}: the file is corrupt")
        values[n] = v
    info = {k: meta.get(k) for k in ("level", "density", "dataset", "lth_fast_version")}
    return Exported(path, arch, dtype, masks, values,
                    {n: tensors[n] for n in dense_names}, info)
