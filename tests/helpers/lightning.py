"""A tiny LightningModule and its data for the Lightning callback's tests (and the DDP script):
an MLP on fixed random data, AdamW (plain torch, masked through Pruner.attach, or MaskedAdamW)
with a StepLR that halves the learning rate every epoch, so a rewound schedule shows."""
from __future__ import annotations

import lightning as L
import torch
from torch import nn

from lth_fast import MaskedAdamW

LR = 1e-2


class TinyNet(L.LightningModule):
    def __init__(self, optimizer: str = "adamw"):
        super().__init__()
        self.optimizer_kind = optimizer
        self.net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                 nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        cls = MaskedAdamW if self.optimizer_kind == "masked" else torch.optim.AdamW
        opt = cls(self.parameters(), lr=LR, weight_decay=0.01)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]


def loader(n: int = 64, batch_size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y),
                                       batch_size=batch_size, shuffle=False)


def trainer(max_epochs: int, callbacks, **kw) -> L.Trainer:
    base = dict(max_epochs=max_epochs, callbacks=callbacks, accelerator="cpu", devices=1,
                enable_progress_bar=False, enable_model_summary=False, logger=False,
                enable_checkpointing=False)
    return L.Trainer(**{**base, **kw})
