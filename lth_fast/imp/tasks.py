"""What an IMP run trains on, as a task: image classification (lth_fast.data datasets) or
character-level language modelling (lth_fast.data.text). A task builds the model, draws the
minibatch of every iteration, computes the training loss and evaluates.

An evaluation is (val_loss, val_accuracy, test_value): for classification test_value is the test
accuracy; for language modelling val_accuracy is None and test_value is the test loss. Losses
are mean cross-entropies in nats (per example, or per predicted character).

Every minibatch is a pure function of (data seed, iteration) (lth_fast.imp.streams), so a run
started at iteration k (late rewinding) sees exactly the batches an uninterrupted run sees from
k on."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Dataset, TextCorpus, augment_cifar, load_dataset, load_text
from ..models import GPT, GPTConfig, build_model
from . import streams
from .config import TEXT_DATASETS, IMPConfig


class DataOrder:
    """The minibatch indices of every iteration: epoch e is a fresh permutation (last partial
    batch dropped) drawn from the data stream (seed, e) of lth_fast.imp.streams."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the training set ({n})")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def indices(self, iteration: int) -> Tensor:
        epoch, pos = divmod(iteration, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            gen = streams.data(self.seed, streams.DATA_ORDER, epoch)
            self._perm = torch.randperm(self.n, generator=gen)
        return self._perm[pos * self.batch_size:(pos + 1) * self.batch_size]


class ClassifyTask:
    kind = "classify"

    def __init__(self, cfg: IMPConfig, data: Dataset) -> None:
        self.cfg, self.data = cfg, data

    def describe(self) -> str:
        return self.data.describe()

    def new_model(self) -> nn.Module:
        return build_model(self.cfg.model.name, input_shape=self.data.input_shape,
                           num_classes=self.data.num_classes)

    def start(self, device) -> None:
        """Before a training run: the training set on the run's device."""
        self.device = device
        self.order = DataOrder(len(self.data.train), self.cfg.training.batch_size,
                               self.cfg.data_seed)
        self.train_x = self.data.train.x.to(device)
        self.train_y = self.data.train.y.to(device)

    def batch(self, it: int, parallel=None) -> Tuple[Tensor, Tensor]:
        idx = self.order.indices(it)
        idx = (idx if parallel is None else parallel.part(idx)).to(self.device)
        x, y = self.train_x[idx], self.train_y[idx]
        if self.cfg.data.augment:
            x = augment_cifar(x, streams.data(self.cfg.data_seed, streams.AUGMENT, it,
                                              self.device))
        return x, y

    @staticmethod
    def loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def _split(self, model: nn.Module, split, batch: int = 1000):
        loss, correct = 0.0, 0
        for i in range(0, len(split), batch):
            x = split.x[i:i + batch].to(self.device, non_blocking=True)
            y = split.y[i:i + batch].to(self.device, non_blocking=True)
            out = model(x)
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            correct += int((out.argmax(1) == y).sum())
        n = max(len(split), 1)
        return loss / n, correct / n

    def evaluate(self, model: nn.Module):
        val_loss, val_acc = self._split(model, self.data.val)
        _, test_acc = self._split(model, self.data.test)
        return val_loss, val_acc, test_acc


class TextTask:
    """A character-level language model: each minibatch is batch_size windows of block_size + 1
    characters drawn uniformly from the training split (inputs and next-character targets);
    evaluation reads every validation / test character once, in non-overlapping windows."""
    kind = "text"

    def __init__(self, cfg: IMPConfig, corpus: TextCorpus) -> None:
        self.cfg, self.corpus = cfg, corpus
        n = cfg.model.block_size + 1
        self.train_starts = corpus.train.window_starts(n)
        self.eval_starts = {s: getattr(corpus, s).window_starts(n, n - 1)
                            for s in ("val", "test")}

    def describe(self) -> str:
        return self.corpus.describe()

    def new_model(self) -> nn.Module:
        c = self.cfg.model
        return GPT(GPTConfig(vocab_size=self.corpus.vocab_size, block_size=c.block_size,
                             n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd))

    def start(self, device) -> None:
        self.device = device

    def batch(self, it: int, parallel=None) -> Tuple[Tensor, Tensor]:
        g = streams.data(self.cfg.data_seed, streams.TEXT_WINDOWS, it)
        pick = torch.randint(self.train_starts.numel(), (self.cfg.training.batch_size,),
                             generator=g)
        if parallel is not None:
            pick = parallel.part(pick)
        w = self.corpus.train.windows(self.train_starts[pick], self.cfg.model.block_size + 1)
        w = w.to(self.device, non_blocking=True)
        return w[:, :-1], w[:, 1:]

    @staticmethod
    def loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        logits = model(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    @torch.no_grad()
    def _split(self, model: nn.Module, name: str, batch: int = 256) -> float:
        split, starts = getattr(self.corpus, name), self.eval_starts[name]
        total, count = 0.0, 0
        for i in range(0, starts.numel(), batch):
            w = split.windows(starts[i:i + batch], self.cfg.model.block_size + 1)
            w = w.to(self.device)
            logits = model(w[:, :-1])
            total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           w[:, 1:].reshape(-1), reduction="sum"))
            count += w[:, 1:].numel()
        return total / max(count, 1)

    def evaluate(self, model: nn.Module):
        return self._split(model, "val"), None, self._split(model, "test")


def load_task(cfg: IMPConfig):
    """The task of cfg.data.dataset: its data read (never downloaded) and split."""
    d = cfg.data
    if d.dataset in TEXT_DATASETS:
        return TextTask(cfg, load_text(d.text_file))
    kw = {k: v for k, v in (("val_size", d.val_size), ("test_size", d.test_size))
          if v is not None}
    try:
        return ClassifyTask(cfg, load_dataset(d.dataset, d.data_dir, **kw))
    except ValueError as e:
        defaults = [k for k in ("val_size", "test_size") if k not in kw and k in str(e)]
        if not defaults or "cannot hold out" not in str(e):
            raise
        # a size the user never gave: say where it came from and how to set it
        raise ValueError(f"{e} ({' and '.join(defaults)}: {d.dataset}'s default; set "
                         f"{', '.join('data.' + k for k in defaults)} (--"
                         f"{' --'.join(k.replace('_', '-') for k in defaults)}))") from None


__all__ = ["ClassifyTask", "TextTask", "DataOrder", "load_task"]
