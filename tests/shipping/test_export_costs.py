"""lth_fast.shipping.inference: multiply-adds counted exactly on small known models, and the
latency timer's contract (not its numbers)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lth_fast.models import GPT, GPTConfig, build_model
from lth_fast.shipping import count_macs, measure_latency


def _keep(shape, k):
    """A mask of `shape` keeping its first k entries."""
    m = torch.zeros(shape, dtype=torch.bool).reshape(-1)
    m[:k] = True
    return m.view(shape)


def test_lenet_counts_each_weight_once_per_example():
    model = build_model("lenet_300_100")
    dense = 784 * 300 + 300 * 100 + 100 * 10
    r = count_macs(model, torch.zeros(1, 1, 28, 28))
    assert r["dense"] == r["pruned"] == dense == 266200
    masks = {"fc1.weight": _keep((300, 784), 1000), "fc3.weight": _keep((10, 100), 7)}
    r = count_macs(model, torch.zeros(1, 1, 28, 28), masks)
    assert r["pruned"] == 1000 + 300 * 100 + 7
    assert r["layers"]["fc1"] == {"dense": 784 * 300, "pruned": 1000}
    assert count_macs(model, torch.zeros(3, 784), masks)["pruned"] == 3 * r["pruned"]


def test_conv_counts_weights_times_output_pixels():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(2, 4, 3, stride=2, padding=1), nn.Flatten(),
                          nn.Linear(4 * 2 * 2, 3))
    masks = {"0.weight": _keep((2, 1, 3, 3), 5), "2.weight": _keep((4, 2, 3, 3), 10)}
    r = count_macs(model, torch.zeros(1, 1, 4, 4), masks)
    # conv 1: 18 weights x 16 pixels; conv 2 (stride 2): 72 x 4; linear: 48
    assert r["dense"] == 18 * 16 + 72 * 4 + 48 == 624
    assert r["pruned"] == 5 * 16 + 10 * 4 + 48 == 168


def test_gpt_per_token_blocks_plus_the_dense_head():
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8))
    e, blocks = 8, 2 * (3 * 64 + 64 + 4 * 64 + 4 * 64)  # qkv, out, fc_in, fc_out per block
    r = count_macs(model, torch.zeros(1, 1, dtype=torch.long))
    assert r["dense"] == blocks + e * 11 == 1624
    masks = {"blocks.0.attn.qkv.weight": _keep((24, 8), 50)}
    r = count_macs(model, torch.zeros(1, 4, dtype=torch.long), masks)
    assert r["pruned"] == 4 * (1624 - 192 + 50)  # four tokens: four times one token
    # a mask on the embedding prunes the tied head too (one parameter, under its first name)
    r = count_macs(model, torch.zeros(1, 1, dtype=torch.long), {"wte.weight": _keep((11, 8), 9)})
    assert r["layers"]["head"] == {"dense": 88, "pruned": 9}


def test_latency_contract():
    before = torch.get_num_threads()
    models = {"a": nn.Linear(4, 4), "b": nn.Linear(4, 4)}
    r = measure_latency(models, torch.zeros(2, 4), repeats=3, warmup=1, threads=1)
    assert set(r) == {"a", "b"} and all(v["repeats"] == 3 for v in r.values())
    assert all(0 < v["min_ms"] <= v["median_ms"] for v in r.values())
    assert torch.get_num_threads() == before  # restored
    with pytest.raises(ValueError, match="repeats >= 1"):
        measure_latency(models, torch.zeros(2, 4), repeats=0)
