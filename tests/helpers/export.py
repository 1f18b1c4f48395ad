"""Helpers of the export tests: tiny IMP runs (LeNet on learnable MNIST files, a GPT on pydoc),
the ticket as the run left it, and exported files rewritten with one part changed."""
from __future__ import annotations

import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lth_fast.imp import preset, run_imp
from lth_fast.models import GPT, GPTConfig, build_model

from tests.helpers.imp import learnable_mnist, tiny


GPT_TINY = dict(n_layer=2, n_head=2, n_embd=8, block_size=16, batch_size=8, iterations=16,
                eval_every=8, warmup=2, rewind_iteration=4, levels=1, controls=())


def lenet_run(root) -> str:
    data = learnable_mnist(str(root / "mnist"), n_train=200, n_test=100)
    run = root / "lenet"
    run_imp(tiny(data, iterations=20, levels=2, controls=()), run, progress=False,
            log=lambda s: None)
    return str(run)


def gpt_run(root) -> str:
    run = root / "gpt"
    run_imp(preset("gpt_pydoc", **GPT_TINY), run, progress=False, log=lambda s: None)
    return str(run)


def ticket_model(run_dir, level: int):
    """The ticket as the IMP run saved it: the model built as the run built it, with the
    level's checkpoint.safetensors loaded."""
    cfg = json.loads(open(f"{run_dir}/config.json").read())
    state = load_file(f"{run_dir}/level_{level:02d}/checkpoint.safetensors")
    if cfg["model"]["name"] == "gpt":
        model = GPT(GPTConfig(vocab_size=state["wte.weight"].shape[0], block_size=16,
                              n_layer=2, n_head=2, n_embd=8))
        state["head.weight"] = state["wte.weight"]
    else:
        model = build_model(cfg["model"]["name"], input_shape=(1, 28, 28), num_classes=10)
    model.load_state_dict(state, strict=True)
    return model.eval()


def read_raw(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def rewrite(src, dst, tensors=None, meta=None):
    """A copy of the exported file `src` at `dst`, with tensors(t) / meta(m) applied (each
    changes its dict in place)."""
    t, m = read_raw(src)
    if tensors:
        tensors(t)
    if meta:
        meta(m)
    save_file(t, str(dst), metadata=m)
    return dst


def header_and_data_bytes(path):
    """(header bytes incl. its 8-byte length, tensor data bytes) of a safetensors file."""
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    return 8 + n, len(raw) - 8 - n


def outputs_equal(a, b, x) -> bool:
    with torch.no_grad():
        return torch.equal(a(x), b(x))
