"""Run by tests/integrations/test_hf.py under torchrun (2 CPU processes, gloo): LotteryTicket
inside the Hugging Face Trainer under DDP. Each rank writes its masks to OUT/rank<r>.safetensors,
for the test to compare."""
import os
import sys

import torch
import transformers

from lth_fast.integrations.hf import LotteryTicket
from lth_fast.pruning import ticket

if __name__ == "__main__":
    out = sys.argv[1]
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=40, n_positions=16,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": x, "labels": x} for x in torch.randint(0, 40, (64, 16), generator=g)]
    lt = LotteryTicket(levels=2, epochs_per_level=1)
    args = transformers.TrainingArguments(
        os.path.join(out, "run"), num_train_epochs=lt.num_train_epochs,
        per_device_train_batch_size=8, learning_rate=1e-3, lr_scheduler_type="constant",
        save_strategy="no", report_to=[], use_cpu=True, ddp_backend="gloo", disable_tqdm=True)
    assert args.world_size == 2, args.world_size
    transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[lt]).train()
    rank = int(os.environ.get("RANK", "0"))
    ticket.save_masks(os.path.join(out, f"rank{rank}.safetensors"), lt.pruner.mask_set)
