"""The in-memory form every loader returns, and the deterministic train/val/test split.

A Dataset holds three Splits of already-normalized float32 images [N, C, H, W] and int64 labels
[N]. The split of a file into train/val/test depends only on its labels and a fixed `split_seed`,
never on a run's seed: every run (and every pruning round) of an experiment must validate on the
same examples, or rounds and seeds would not be comparable."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Split:
    x: Tensor  # float32 [N, C, H, W], normalized
    y: Tensor  # int64 [N]

    def __post_init__(self):
        if self.x.dim() != 4 or self.y.dim() != 1 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"Split: x must be [N, C, H, W] and y [N], got x "
                             f"{list(self.x.shape)} and y {list(self.y.shape)}")
        if self.x.dtype != torch.float32 or self.y.dtype != torch.int64:
            raise ValueError(f"Split: x must be float32 and y int64, got {self.x.dtype} and "
                             f"{self.y.dtype}")

    def __len__(self) -> int:
        return self.y.shape[0]


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: Tuple[int, ...]  # (C, H, W)

    def describe(self) -> str:
        """One line for logs: "mnist5k: 3500 train / 500 val / 1000 test, 1×28×28, 10 classes"."""
        shape = "×".join(str(d) for d in self.input_shape)
        return (f"{self.name}: {len(self.train)} train / {len(self.val)} val / "
                f"{len(self.test)} test, {shape}, {self.num_classes} classes")


def stratified_order(labels: np.ndarray, split_seed: int) -> np.ndarray:
    """A permutation of range(len(labels)) in which every prefix holds each class in proportion
    to its share of the whole (within one example), so cutting consecutive chunks off it gives
    stratified splits without a per-class loop.

    Examples are shuffled with default_rng(split_seed), then each is keyed by its rank inside its
    class scaled to [0, 1) ((rank + 0.5) / class count); a stable sort on that key interleaves
    the classes evenly, ties keeping the shuffled order."""
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    perm = np.random.default_rng(split_seed).permutation(n)
    shuffled = labels[perm]
    counts = np.bincount(shuffled) if n else np.zeros(0, np.int64)
    by_class = np.argsort(shuffled, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_class] = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    key = (rank + 0.5) / counts[shuffled]
    return perm[np.argsort(key, kind="stable")]


def split_indices(labels: np.ndarray, holdout_sizes: Sequence[int],
                  split_seed: int, names: Sequence[str] = ()) -> List[np.ndarray]:
    """Deterministic stratified partition of range(len(labels)): one index array per entry of
    `holdout_sizes` (in that order), then the remainder (the training set, never empty). Each
    array is sorted, so a split keeps the file's order; the training loop does the shuffling.
    names: what each size is called (e.g. "val_size"), for the error."""
    n = len(labels)
    sizes = [int(s) for s in holdout_sizes]
    if any(s < 0 for s in sizes) or sum(sizes) >= n:
        shown = [f"{name} {s}" for name, s in zip(names, sizes)] or [str(s) for s in sizes]
        raise ValueError(f"cannot hold out {' + '.join(shown)} of {n} examples: the "
                         f"held-out sizes must be >= 0 and leave at least one for training")
    order = stratified_order(labels, split_seed)
    bounds = np.cumsum([0] + sizes + [n - sum(sizes)])
    return [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def make_split(images: np.ndarray, labels: np.ndarray, mean: Sequence[float],
               std: Sequence[float]) -> Split:
    """A Split from uint8 images [N, C, H, W] (0..255) and integer labels [N]: pixels scaled to
    [0, 1], then normalized per channel as (x - mean) / std (torchvision's ToTensor + Normalize
    on a whole array at once)."""
    # astype copies, so the tensor never aliases a read-only buffer (np.frombuffer of a file)
    x = torch.from_numpy(np.asarray(images).astype(np.float32)).div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    x.sub_(m).div_(s)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64).copy())
    return Split(x, y)


def make_dataset(name: str, train_images: np.ndarray, train_labels: np.ndarray,
                 test_images: np.ndarray, test_labels: np.ndarray, val_size: int,
                 split_seed: int, num_classes: int, mean: Sequence[float],
                 std: Sequence[float]) -> Dataset:
    """A Dataset whose val split is `val_size` examples held out of the training files and whose
    test split is the test files as they are (the usual protocol for MNIST and CIFAR)."""
    val_idx, train_idx = split_indices(train_labels, [val_size], split_seed, ["val_size"])
    return Dataset(
        name=name,
        train=make_split(train_images[train_idx], train_labels[train_idx], mean, std),
        val=make_split(train_images[val_idx], train_labels[val_idx], mean, std),
        test=make_split(test_images, test_labels, mean, std),
        num_classes=num_classes,
        input_shape=tuple(int(d) for d in train_images.shape[1:]),
    )
