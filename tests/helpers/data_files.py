"""Writers of tiny dataset files in the real formats (IDX for MNIST, pickled CIFAR-10 python
batches), shared by the loader tests and the IMP tests."""
from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np

from lth_fast.data import mnist


def write(path, payload: bytes, gz: bool = False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + (".gz" if gz else ""), "wb") as f:
        f.write(gzip.compress(payload) if gz else payload)
    return path + (".gz" if gz else "")


def idx_bytes(arr: np.ndarray) -> bytes:
    magic = 0x0803 if arr.ndim == 3 else 0x0801
    return struct.pack(f">{1 + arr.ndim}I", magic, *arr.shape) + arr.astype(np.uint8).tobytes()


def tagged_images(rng, n, shape):
    """Random uint8 images whose first two values encode their index, so a loaded split can be
    traced back to the examples it came from."""
    x = rng.integers(0, 256, size=(n,) + shape, dtype=np.uint8)
    flat = x.reshape(n, -1)
    flat[:, 0], flat[:, 1] = np.arange(n) % 256, np.arange(n) // 256
    return x


def mnist_files(root, sub="", gz=(False,) * 4, n_train=60, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"train_images": tagged_images(rng, n_train, (28, 28)),
              "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
              "test_images": tagged_images(rng, n_test, (28, 28)),
              "test_labels": rng.integers(0, 10, n_test).astype(np.uint8)}
    paths = {k: write(os.path.join(root, sub, mnist.FILES[k]), idx_bytes(a), z)
             for (k, a), z in zip(arrays.items(), gz)}
    return arrays, paths


def cifar_files(root, protocol, sub="", n_per_batch=12, n_test=10, str_keys=False, seed=0):
    rng = np.random.default_rng(seed)
    train = tagged_images(rng, 5 * n_per_batch, (3, 32, 32))
    test = tagged_images(rng, n_test, (3, 32, 32))
    train_y, test_y = rng.integers(0, 10, len(train)), rng.integers(0, 10, n_test)
    key = (lambda k: k) if str_keys else (lambda k: k.encode())

    def dump(name, x, y):
        batch = {key("batch_label"): b"batch", key("labels"): [int(v) for v in y],
                 key("data"): x.reshape(len(x), -1), key("filenames"): [b"f.png"] * len(x)}
        os.makedirs(os.path.join(root, sub), exist_ok=True)
        with open(os.path.join(root, sub, name), "wb") as f:
            pickle.dump(batch, f, protocol=protocol)

    for i in range(5):
        part = slice(i * n_per_batch, (i + 1) * n_per_batch)
        dump(f"data_batch_{i + 1}", train[part], train_y[part])
    dump("test_batch", test, test_y)
    return train, train_y, test, test_y
