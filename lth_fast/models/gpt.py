"""A small GPT (decoder-only transformer, as in nanoGPT): token and position embeddings,
pre-LayerNorm blocks of causal self-attention and a GELU MLP, a final LayerNorm, and an output
head tied to the token embedding.

Parameter names are what the transformer selection rule (lth_fast.pruning.selection) and the
per-layer report address: blocks.B.attn.qkv / blocks.B.attn.out / blocks.B.mlp.fc_in /
blocks.B.mlp.fc_out. The head's weight *is* wte.weight (one parameter, listed once, under its
first name "wte.weight")."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    block_size: int = 64   # the longest context, in tokens
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"GPTConfig: {name} must be a positive int, got {v!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be a multiple of n_head "
                             f"({self.n_head})")


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # q, k and v in one matmul
        self.out = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
                   for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc_in = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.fc_out = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_out(F.gelu(self.fc_in(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.n_embd), CausalSelfAttention(cfg)
        self.ln2, self.mlp = nn.LayerNorm(cfg.n_embd), MLP(cfg)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """GPT(GPTConfig(vocab_size=..., ...)); forward(idx [B, T] int64, T <= block_size) ->
    logits [B, T, vocab_size]. Position t's logits depend on tokens 0..t only."""

    SELECTION = "transformer"  # IMP prunes the blocks' Linear weights (selection.py)

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.wte.weight  # tied: one parameter, one mask if ever pruned
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # GPT-2's initialisation: N(0, 0.02) everywhere, zero biases, and the projections that
        # add into the residual stream scaled by 1/sqrt(2 * n_layer).
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for b in self.blocks:
            for proj in (b.attn.out, b.mlp.fc_out):
                nn.init.normal_(proj.weight, 0.0, 0.02 / math.sqrt(2 * self.cfg.n_layer))

    def forward(self, idx: Tensor) -> Tensor:
        if idx.dim() != 2:
            raise ValueError(f"GPT expects token ids shaped [batch, time], got "
                             f"{list(idx.shape)}")
        t = idx.shape[1]
        if t > self.cfg.block_size:
            raise ValueError(f"GPT: a sequence of {t} tokens is longer than block_size "
                             f"{self.cfg.block_size}")
        pos = torch.arange(t, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
