"""CIFAR-10 from the "python version" batches (data_batch_1..5, test_batch, as extracted from
cifar-10-python.tar.gz), and the standard training augmentation done on whole batches.

Each batch is a pickle of a dict {b"data": uint8 [10000, 3072] (1024 red, 1024 green, 1024 blue
values of a 32×32 image, row-major), b"labels": list of ints, ...}. Unpickling can run arbitrary
code, so the batches are read by an unpickler that only resolves the few globals an ndarray
needs; anything else is refused before it can be called."""
from __future__ import annotations

import os
import pickle
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .splits import Dataset, make_dataset

try:  # numpy >= 2 moved these under numpy._core; old pickles still name numpy.core
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
NUM_CLASSES = 10
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"


def _latin1_encode(text, encoding="latin1"):
    # Python 3 pickles bytes with protocol < 3 as _codecs.encode(str, "latin1"); accept only
    # that form, so a CIFAR batch re-saved with protocol 2 still loads.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode is only allowed as "
                                     f"encode(str, 'latin1'), got encoding {encoding!r}")
    return text.encode("latin1")


# (module, name) -> object: ndarray via __reduce__ (protocols 0-4) or protocol 5's _frombuffer.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in _ALLOWED; any other (os.system, builtins.eval, ...) raises
    RefusedGlobal naming it and the file, so nothing it names is ever imported or called."""

    def __init__(self, file, path: str):
        super().__init__(file, encoding="bytes")  # the originals were written by Python 2
        self._path = path

    def find_class(self, module, name):
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise RefusedGlobal(f"{self._path}: refusing to unpickle global {module}.{name} "
                                f"(a CIFAR-10 batch only needs numpy arrays)")
        return obj


def _field(batch: dict, key: str):
    # The originals have bytes keys; a batch re-pickled by Python 3 code may have str keys.
    return batch[key.encode()] if key.encode() in batch else batch.get(key)


def read_batch(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 3, 32, 32], labels int64 [N]) from one CIFAR-10 batch file."""
    with open(path, "rb") as f:
        try:
            batch = RestrictedUnpickler(f, path).load()
        except RefusedGlobal:
            raise
        except Exception as e:  # a corrupt pickle can fail in many ways; all mean a bad file
            raise ValueError(f"{path}: not a readable CIFAR-10 batch "
                             f"({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a dict, found {type(batch).__name__}")
    data, labels = _field(batch, "data"), _field(batch, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be a uint8 array [N, 3072], found "
                         f"{getattr(data, 'dtype', type(data).__name__)} "
                         f"{list(getattr(data, 'shape', []))}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: 'labels' must be a list of ints ({e})") from e
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but 'labels' has shape "
                         f"{list(labels.shape)}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{path}: labels must be in 0..9, found "
                         f"{int(labels.min())}..{int(labels.max())}")
    return data.reshape(-1, 3, 32, 32), labels


def _find_dir(data_dir: str) -> str:
    tried = [data_dir, os.path.join(data_dir, "cifar-10-batches-py")]
    for d in tried:
        if all(os.path.isfile(os.path.join(d, n)) for n in TRAIN_FILES + (TEST_FILE,)):
            return d
    missing = [os.path.join(d, n) for d in tried for n in TRAIN_FILES + (TEST_FILE,)
               if not os.path.isfile(os.path.join(d, n))]
    hint = ""
    if os.path.isfile(os.path.join(data_dir, "cifar-10-python.tar.gz")):
        hint = " (extract cifar-10-python.tar.gz there first: tar xzf cifar-10-python.tar.gz)"
    raise FileNotFoundError(f"CIFAR-10 batches not found in {' or '.join(tried)}{hint}; "
                            f"missing:\n  " + "\n  ".join(missing))


def load_cifar10(data_dir: str, val_size: int = 5000, split_seed: int = 0) -> Dataset:
    """CIFAR-10: train/val from the 50,000 training images (val: `val_size` of them, chosen by
    `split_seed`, stratified), test = test_batch; normalized per channel."""
    d = _find_dir(data_dir)
    parts = [read_batch(os.path.join(d, n)) for n in TRAIN_FILES]
    train_x = np.concatenate([x for x, _ in parts])
    train_y = np.concatenate([y for _, y in parts])
    test_x, test_y = read_batch(os.path.join(d, TEST_FILE))
    return make_dataset("cifar10", train_x, train_y, test_x, test_y, val_size, split_seed,
                        NUM_CLASSES, MEAN, STD)


def augment_cifar(x: Tensor, generator: torch.Generator, pad: int = 4,
                  flip: bool = True) -> Tensor:
    """The standard CIFAR training augmentation on a batch [N, C, H, W]: a random H×W crop of
    each image zero-padded by `pad` on every side, then a horizontal flip with probability 1/2.

    Padding is zeros of the (normalized) input, i.e. the mean colour rather than torchvision's
    black border. Offsets and flips come from `generator` (a CPU or CUDA generator; the result
    is moved to x's device), so a seeded generator gives the same batch every time. Crop and
    flip are one gather: output pixel (i, j) of image n reads padded pixel
    (dy[n] + i, dx[n] + (W - 1 - j if flipped[n] else j))."""
    if x.dim() != 4:
        raise ValueError(f"augment_cifar: expected [N, C, H, W], got {list(x.shape)}")
    n, c, h, w = x.shape
    gen_device = generator.device
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=gen_device)
    flipped = torch.rand(n, generator=generator, device=gen_device) < 0.5
    # drawn even when flip=False, so both settings consume the generator alike
    offsets, flipped = offsets.to(x.device), flipped.to(x.device) & flip
    dy, dx = offsets[0], offsets[1]
    rows = dy[:, None] + torch.arange(h, device=x.device)                    # [N, H]
    j = torch.arange(w, device=x.device)
    cols = dx[:, None] + torch.where(flipped[:, None], w - 1 - j, j)         # [N, W]
    padded = F.pad(x, (pad, pad, pad, pad)).flatten(2)                       # [N, C, H'W']
    index = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(n, 1, h * w)
    return padded.gather(2, index.expand(n, c, h * w)).view(n, c, h, w)
