"""Run by tests/integrations/test_lightning.py, with the repository root on PYTHONPATH:
LotteryTicket under Lightning's DDP on 2 CPU processes (gloo); Lightning starts the second rank
by running this script again. Each rank writes its masks to OUT/rank<r>.safetensors, for the
test to compare."""
import sys

import torch

from lth_fast.integrations.lightning import LotteryTicket
from lth_fast.pruning import ticket

from tests.helpers.lightning import TinyNet, loader, trainer

if __name__ == "__main__":
    out = sys.argv[1]
    torch.manual_seed(0)
    lt = LotteryTicket(levels=2, epochs_per_level=1)
    tr = trainer(lt.max_epochs, [lt], strategy="ddp", devices=2)
    tr.fit(TinyNet(), loader())
    ticket.save_masks(f"{out}/rank{tr.global_rank}.safetensors", lt.pruner.mask_set)
