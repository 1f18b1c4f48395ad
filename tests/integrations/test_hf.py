"""lth_fast.integrations.hf.LotteryTicket inside real transformers Trainer.train() runs, on tiny
models built from configs (nothing downloaded): GPT-2's blocks (Conv1D) are pruned and its tied
embedding/head is not; pruned entries of weights and of the optimizer's state (AdamW inside
Accelerate's wrapper) stay exactly 0; each level starts from the rewind point; densities reach
the log history and TensorBoard; a run resumed from a mid-IMP checkpoint ends where the
uninterrupted one does; BERT's pooler and classifier stay dense; under DDP (torchrun, 2 gloo
processes) the ranks' masks agree."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT
from tests.helpers.readme import example

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from lth_fast.integrations.hf import STATE_FILE, LotteryTicket  # noqa: E402
from lth_fast.pruning.attach import unwrap_optimizer  # noqa: E402
from lth_fast.pruning import ticket  # noqa: E402


VOCAB, T = 40, 16


def tiny_gpt2(seed=0):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB,
                                  n_positions=T, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(cfg)


def lm_data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, T), generator=g)
    return [{"input_ids": x, "labels": x} for x in ids]


def args(out, epochs, **kw):
    base = dict(num_train_epochs=epochs, per_device_train_batch_size=16, learning_rate=1e-3,
                lr_scheduler_type="constant", save_strategy="no", report_to=[], use_cpu=True,
                disable_tqdm=True, seed=0, data_seed=0)
    return transformers.TrainingArguments(str(out), **{**base, **kw})


def test_gpt2_levels_mask_blocks_and_state(tmp_path):
    model = tiny_gpt2()
    wte = model.transformer.wte.weight.detach().clone()
    lt = LotteryTicket(levels=2, epochs_per_level=1)
    trainer = transformers.Trainer(model=model, args=args(tmp_path, lt.num_train_epochs,
                                                          report_to=["tensorboard"]),
                                   train_dataset=lm_data(), callbacks=[lt])
    trainer.train()
    assert lt.level == 2 and lt.pruner.density == pytest.approx(0.64, abs=0.001)
    assert all(".attn.c_" in n or ".mlp.c_" in n for n in lt.pruner.names)
    assert len(lt.pruner.names) == 8
    assert model.transformer.wte.weight.count_nonzero() == wte.numel()   # tied head: dense
    opt = unwrap_optimizer(trainer.optimizer)
    params = dict(model.named_parameters())
    for n, m in lt.pruner.masks.items():
        p = params[n]
        assert not p[~m].any(), n
        for k, v in opt.state[p].items():
            if isinstance(v, torch.Tensor) and v.shape == p.shape:
                assert not v[~m].any(), f"{n}: {k}"
    logged = [h["lth/density"] for h in trainer.state.log_history if "lth/density" in h]
    assert logged == [1.0, pytest.approx(0.8, abs=0.001), pytest.approx(0.64, abs=0.001)]
    tb = os.path.join(tmp_path, "runs", "lth_fast")
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(tb))


def test_each_level_starts_from_the_rewind_point(tmp_path):
    model = tiny_gpt2()
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    lt = LotteryTicket(levels=1, epochs_per_level=1)
    starts = {}

    class Probe(transformers.TrainerCallback):
        def on_epoch_begin(self, args, state, control, model=None, optimizer=None, **kw):
            starts[round(state.epoch or 0)] = (
                {n: p.detach().clone() for n, p in model.named_parameters()},
                len(unwrap_optimizer(optimizer).state))

    transformers.Trainer(model=model, args=args(tmp_path, lt.num_train_epochs),
                         train_dataset=lm_data(), callbacks=[lt, Probe()]).train()
    weights, state = starts[1]
    assert state == 0
    for n, w in weights.items():
        want = init[n]
        if n in lt.pruner.masks:
            want = torch.where(lt.pruner.masks[n], want, torch.zeros_like(want))
        assert torch.equal(w, want), n


def test_resume_mid_imp(tmp_path):
    lt = LotteryTicket(levels=2, epochs_per_level=1, rewind_step=1)
    model = tiny_gpt2()
    out = tmp_path / "a"
    transformers.Trainer(model=model, args=args(out, lt.num_train_epochs, save_strategy="epoch"),
                         train_dataset=lm_data(), callbacks=[lt]).train()
    mid = out / "checkpoint-6"     # the end of level 1 (3 steps per epoch), before pruning
    assert (mid / STATE_FILE).exists()
    resumed_lt = LotteryTicket(levels=2, epochs_per_level=1, rewind_step=1)
    resumed = tiny_gpt2(seed=5)
    transformers.Trainer(model=resumed, args=args(out, lt.num_train_epochs,
                                                   save_strategy="epoch"),
                         train_dataset=lm_data(), callbacks=[resumed_lt]).train(
        resume_from_checkpoint=str(mid))
    assert resumed_lt.level == 2
    for n in lt.pruner.names:
        assert torch.equal(resumed_lt.pruner.masks[n], lt.pruner.masks[n])
    for (n, p), q in zip(model.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), f"{n} differs after resuming"


def test_resume_with_a_damaged_or_missing_masks_file_is_a_clear_error(tmp_path):
    lt = LotteryTicket(levels=1, epochs_per_level=1)
    out = tmp_path / "a"
    transformers.Trainer(model=tiny_gpt2(), args=args(out, 2, save_strategy="epoch"),
                         train_dataset=lm_data(), callbacks=[lt]).train()
    state_file = out / "checkpoint-3" / STATE_FILE
    state_file.write_bytes(state_file.read_bytes()[:40])          # damaged
    again = LotteryTicket(levels=1, epochs_per_level=1)
    with pytest.raises(ValueError, match="is not a readable lth_fast IMP state file"):
        transformers.Trainer(model=tiny_gpt2(), args=args(out, 2, save_strategy="epoch"),
                             train_dataset=lm_data(), callbacks=[again]).train(
            resume_from_checkpoint=str(out / "checkpoint-3"))
    os.remove(state_file)                                         # missing
    again = LotteryTicket(levels=1, epochs_per_level=1)
    with pytest.raises(RuntimeError, match="resumes at step 3 but .* does not exist"):
        transformers.Trainer(model=tiny_gpt2(), args=args(out, 2, save_strategy="epoch"),
                             train_dataset=lm_data(), callbacks=[again]).train(
            resume_from_checkpoint=str(out / "checkpoint-3"))


def test_levels_early_stop_in_the_log_history(tmp_path):
    lt = LotteryTicket(levels=2, epochs_per_level=1, monitor="eval_loss")
    trainer = transformers.Trainer(
        model=tiny_gpt2(), args=args(tmp_path, lt.num_train_epochs, eval_strategy="epoch"),
        train_dataset=lm_data(), eval_dataset=lm_data(16, seed=1), callbacks=[lt])
    trainer.train()
    ends = [h for h in trainer.state.log_history if "lth_level/eval_loss_at_early_stop" in h]
    assert [h["lth/level"] for h in ends] == [0.0, 1.0, 2.0]
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    assert [h["lth_level/eval_loss_at_early_stop"] for h in ends] == \
        [pytest.approx(h["eval_loss"]) for h in evals]     # one evaluation per level here
    assert [h["lth_level/early_stop_step"] for h in ends] == [3, 6, 9]


def test_bert_keeps_pooler_and_classifier_dense(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                  intermediate_size=64, vocab_size=VOCAB, num_labels=2)
    model = transformers.BertForSequenceClassification(cfg)
    g = torch.Generator().manual_seed(0)
    data = [{"input_ids": torch.randint(0, VOCAB, (T,), generator=g),
             "labels": torch.tensor(i % 2)} for i in range(32)]
    lt = LotteryTicket(levels=1, epochs_per_level=1)
    transformers.Trainer(model=model, args=args(tmp_path, lt.num_train_epochs),
                         train_dataset=data, callbacks=[lt]).train()
    assert len(lt.pruner.names) == 12
    assert all(n.startswith("bert.encoder.layer.") for n in lt.pruner.names)
    assert model.bert.pooler.dense.weight.count_nonzero() == model.bert.pooler.dense.weight.numel()
    assert lt.pruner.density == pytest.approx(0.8, abs=0.001)


def test_docs_hf_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = {"model": tiny_gpt2(), "train_data": lm_data()}
    exec(example("hf"), scope)
    assert scope["lt"].level == 3


def test_ddp_ranks_agree_on_the_masks(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    script = os.path.join(ROOT, "tests", "scripts", "hf_ddp.py")
    out = subprocess.run([torchrun, "--standalone", "--nproc-per-node", "2", script,
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    masks = [ticket.load_masks(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    for n in masks[0].names:
        assert torch.equal(masks[0].masks[n], masks[1].masks[n])
    assert masks[0].density == pytest.approx(0.64, abs=0.001)
