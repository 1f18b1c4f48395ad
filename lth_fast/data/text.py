"""Character-level text corpora, read from local files; nothing is downloaded.

The default corpus is the English prose of CPython's own `pydoc_data.topics` (the help texts
of the language reference, ~465K characters, shipped with every Python): its entries joined in
sorted key order. The text differs between Python releases, so a corpus carries its SHA-256 and
the Python version it came from, and an IMP run records both. Any UTF-8 file can be read
instead (e.g. tiny-shakespeare's input.txt).

Splits are contiguous blocks of SPLIT_BLOCK characters dealt out in a fixed pattern (of every
ten blocks, eight train, one validation, one test), so every split samples the whole text and
the split never depends on a run's seed. Training windows lie inside one block of the training
split; evaluation reads each validation / test block as consecutive, non-overlapping windows."""
from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor

PYDOC = "pydoc"
SPLIT_BLOCK = 2048
PATTERN = ("train",) * 8 + ("val", "test")  # block i goes to PATTERN[i % 10]


def pydoc_text() -> str:
    from pydoc_data.topics import topics
    return "".join(topics[k] for k in sorted(topics))


def read_text_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"text file {path!r}: cannot be read ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"text file {path!r} is not UTF-8 (byte {e.start}: {e.reason})") \
            from None


@dataclass(frozen=True)
class TextCorpus:
    """A text as token ids: `chars` is the vocabulary (every distinct character, sorted);
    each split is a TextSplit."""
    name: str
    sha256: str
    python: Optional[str]   # the Python version the pydoc text came from (None for a file)
    chars: str
    train: "TextSplit"
    val: "TextSplit"
    test: "TextSplit"

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def describe(self) -> str:
        n = {s: getattr(self, s).ids.numel() for s in ("train", "val", "test")}
        return (f"{self.name}: {n['train']:,} train / {n['val']:,} val / {n['test']:,} test "
                f"characters, {self.vocab_size} symbols, sha256 {self.sha256[:12]}")


@dataclass(frozen=True)
class TextSplit:
    """One split: its blocks concatenated in text order (`ids`, int64) and where each block
    starts in `ids` (`starts`, ending with len(ids))."""
    ids: Tensor
    starts: Tuple[int, ...]

    def window_starts(self, length: int, stride: int = 1) -> Tensor:
        """The start of every window of `length` tokens inside one block, at offsets a multiple
        of `stride` within it: training samples from all (stride 1); evaluation reads the
        non-overlapping ones (stride = length - 1: each token after the first predicted once)."""
        out = [torch.arange(a, max(a, b - length + 1), stride)  # none in a short block
               for a, b in zip(self.starts, self.starts[1:])]
        out = torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)
        if out.numel() == 0:
            raise ValueError(f"no window of {length} tokens fits in this split's blocks "
                             f"(of {SPLIT_BLOCK} characters)")
        return out

    def windows(self, starts: Tensor, length: int) -> Tensor:
        """[len(starts), length] token ids."""
        return self.ids[starts[:, None] + torch.arange(length)]


def _split(blocks: List[Tensor]) -> TextSplit:
    starts = [0]
    for b in blocks:
        starts.append(starts[-1] + b.numel())
    ids = torch.cat(blocks) if blocks else torch.zeros(0, dtype=torch.int64)
    return TextSplit(ids, tuple(starts))


def load_text(text_file: Optional[str] = None, *, min_blocks: int = 10) -> TextCorpus:
    """The pydoc corpus, or the UTF-8 file `text_file`, split into train / val / test."""
    if text_file is None:
        text, name, python = pydoc_text(), PYDOC, platform.python_version()
    else:
        text, name, python = read_text_file(text_file), os.path.basename(text_file), None
    blocks = -(-len(text) // SPLIT_BLOCK)
    if blocks < min_blocks:
        raise ValueError(f"text {name!r} has {len(text):,} characters; the splits need at least "
                         f"{(min_blocks - 1) * SPLIT_BLOCK + 1:,} ({min_blocks} blocks of up "
                         f"to {SPLIT_BLOCK})")
    chars = "".join(sorted(set(text)))
    lookup = torch.full((max(map(ord, chars)) + 1,), -1, dtype=torch.int64)
    lookup[torch.tensor([ord(c) for c in chars])] = torch.arange(len(chars))
    ids = lookup[torch.tensor([ord(c) for c in text], dtype=torch.int64)]
    parts = {"train": [], "val": [], "test": []}
    for i in range(blocks):
        parts[PATTERN[i % len(PATTERN)]].append(ids[i * SPLIT_BLOCK:(i + 1) * SPLIT_BLOCK])
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return TextCorpus(name, sha, python, chars, _split(parts["train"]), _split(parts["val"]),
                      _split(parts["test"]))
