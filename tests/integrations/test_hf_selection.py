"""Hugging Face models built from configs (nothing downloaded): GPT-2's blocks are
transformers' Conv1D, which a Pruner's default selection takes like nn.Linear, and its head is
tied to the token embedding, which stays dense; BERT's block Linears, not its pooler or head,
are the transformer rule's."""
import pytest

transformers = pytest.importorskip("transformers")

from lth_fast import Pruner  # noqa: E402
from lth_fast.pruning import transformer_weights  # noqa: E402

GPT2_BLOCKS = [f"transformer.h.{i}.{m}.weight" for i in range(2)
               for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]


def test_gpt2_blocks_are_selected_and_the_tied_head_is_not():
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2))
    assert model.lm_head.weight is model.transformer.wte.weight
    assert list(Pruner(model).names) == GPT2_BLOCKS
    assert transformer_weights(model) == GPT2_BLOCKS
    pruner = Pruner(model)
    pruner.prune(0.5)
    assert model.transformer.wte.weight.count_nonzero() == model.transformer.wte.weight.numel()


def test_bert_rule_takes_the_encoder_linears_only():
    cfg = transformers.BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                  intermediate_size=64, vocab_size=100)
    model = transformers.BertForSequenceClassification(cfg)
    names = transformer_weights(model)
    assert len(names) == 12 and all(n.startswith("bert.encoder.layer.") for n in names)
    assert "bert.pooler.dense.weight" in Pruner(model).names   # the plain rule: every Linear
