"""lth_fast.models.gpt, lth_fast.data.text and the transformer selection rule: shapes, causal
masking, the tied head, the corpus's splits and checksum, which weights a Pruner takes."""
from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

from lth_fast import Pruner
from lth_fast.data.text import PATTERN, SPLIT_BLOCK, load_text, pydoc_text
from lth_fast.models import GPT, GPTConfig
from lth_fast.pruning import transformer_weights


def tiny_gpt(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**{"vocab_size": 23, "block_size": 16, "n_layer": 2, "n_head": 2,
                            "n_embd": 8, **kw}))


def test_shapes_names_and_tied_head():
    model = tiny_gpt()
    idx = torch.randint(23, (3, 16))
    assert model(idx).shape == (3, 16, 23)
    assert model(idx[:, :5]).shape == (3, 5, 23)
    assert model.head.weight is model.wte.weight
    names = [n for n, _ in model.named_parameters()]  # the tied weight once
    assert "head.weight" not in names and names.count("wte.weight") == 1
    assert "blocks.1.attn.qkv.weight" in names and "blocks.0.mlp.fc_out.weight" in names
    assert model.blocks[0].attn.qkv.weight.shape == (24, 8)


def test_a_future_token_changes_no_earlier_logit():
    model = tiny_gpt().eval()
    idx = torch.randint(23, (2, 16))
    for t in (0, 7, 15):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 23
        a, b = model(idx), model(changed)
        assert torch.equal(a[:, :t], b[:, :t]), f"a change at {t} reached an earlier position"
        assert not torch.allclose(a[:, t], b[:, t])  # ... and does change its own


@pytest.mark.parametrize("bad, message", [
    (dict(n_embd=10, n_head=4), "multiple of n_head"), (dict(n_layer=0), "n_layer"),
    (dict(vocab_size=True), "vocab_size")])
def test_config_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        tiny_gpt(**bad)


def test_too_long_or_flat_input_is_refused():
    model = tiny_gpt()
    with pytest.raises(ValueError, match="longer than block_size 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        model(torch.zeros(16, dtype=torch.long))


def test_selection_takes_the_block_matrices_and_leaves_the_tied_head():
    model = tiny_gpt()
    names = transformer_weights(model)
    assert names == [f"blocks.{b}.{m}.weight" for b in range(2)
                     for m in ("attn.qkv", "attn.out", "mlp.fc_in", "mlp.fc_out")]
    pruner = Pruner(model, include=names)
    assert list(pruner.names) == names
    # asked for, the tied embedding/head is one parameter with one mask, under its first name
    wide = Pruner(model, types=(nn.Linear, nn.Embedding))
    assert [n for n in wide.names if n in ("wte.weight", "head.weight")] == ["wte.weight"]
    wide.prune(0.5)
    assert wide.masks["wte.weight"].shape == model.head.weight.shape


def test_selection_of_a_model_without_blocks_is_an_error():
    with pytest.raises(ValueError, match="inside numbered blocks"):
        transformer_weights(nn.Sequential(nn.Linear(3, 3)))  # "0.weight": not inside a block


def test_pydoc_corpus_splits_and_checksum():
    text = pydoc_text()
    corpus = load_text()
    assert corpus.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert corpus.python and corpus.name == "pydoc"
    sizes = [corpus.train.ids.numel(), corpus.val.ids.numel(), corpus.test.ids.numel()]
    assert sum(sizes) == len(text)
    blocks = -(-len(text) // SPLIT_BLOCK)
    # every split is its blocks, in text order, decoded back to the text's characters
    for name in ("train", "val", "test"):
        split = getattr(corpus, name)
        mine = [i for i in range(blocks) if PATTERN[i % 10] == name]
        assert len(split.starts) == len(mine) + 1
        for i in mine[:3] + mine[-1:]:
            j = mine.index(i)
            got = corpus.decode(split.ids[split.starts[j]:split.starts[j + 1]])
            assert got == text[i * SPLIT_BLOCK:(i + 1) * SPLIT_BLOCK]
    assert 0.09 < sizes[1] / len(text) < 0.11 and 0.09 < sizes[2] / len(text) < 0.11
    assert load_text().sha256 == corpus.sha256  # deterministic


def test_windows_stay_inside_blocks(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("".join(chr(97 + i % 26) for i in range(SPLIT_BLOCK * 10 + 5)),
                    encoding="utf-8")
    corpus = load_text(str(path))
    assert corpus.python is None and corpus.vocab_size == 26
    n = 65
    starts = corpus.train.window_starts(n)
    ends = starts + n
    bounds = torch.tensor(corpus.train.starts)
    block = torch.searchsorted(bounds, starts, right=True) - 1
    assert bool((ends <= bounds[block + 1]).all())
    evals = corpus.val.window_starts(n, n - 1)  # each token after a window's first once
    assert evals.tolist() == list(range(0, SPLIT_BLOCK - n + 1, n - 1))


def test_text_file_errors(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9 " * 10000)
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text(str(bad))
    with pytest.raises(ValueError, match="cannot be read"):
        load_text(str(tmp_path / "missing.txt"))
    short = tmp_path / "short.txt"
    short.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match="splits need at least"):
        load_text(str(short))
