"""The architecture record of an exported ticket, and the model it rebuilds.

An image model is {"model", "input_shape", "num_classes"} (lth_fast.models.build_model); the
GPT is {"model": "gpt"} plus its GPTConfig fields. Enough to rebuild the network without the
data set: input_shape and num_classes replace what the data set told the IMP run."""
from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..models import MODELS, GPT, GPTConfig, build_model

# one example's shape per image data set (the IMP driver reads it from the data)
INPUT_SHAPES = {"mnist5k": (1, 28, 28), "mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
GPT_FIELDS = tuple(f.name for f in dataclasses.fields(GPTConfig))


def architecture_of(model: str, dataset: str, shape: Mapping[str, int],
                    state: Dict[str, Tensor]) -> dict:
    """The record for a model of name `model` trained on `dataset` (a GPT's `shape`: n_layer,
    n_head, n_embd, block_size) and one of its checkpoints: the class count and the vocabulary
    are read from the checkpoint's shapes, which the data set fixed when the model was built."""
    if model == "gpt":
        if "wte.weight" not in state:
            raise ValueError("the checkpoint has no wte.weight (the GPT's token embedding)")
        return {"model": "gpt", "vocab_size": int(state["wte.weight"].shape[0]),
                **{k: int(shape[k]) for k in GPT_FIELDS if k != "vocab_size"}}
    if dataset not in INPUT_SHAPES:
        raise ValueError(f"dataset {dataset!r} has no known input shape; known: "
                         f"{', '.join(INPUT_SHAPES)}")
    spec = MODELS.get(model)
    if spec is None:
        raise ValueError(f"unknown model {model!r}")
    out = getattr(spec.cls, "OUTPUT_LAYER", None)
    num_classes = int(state[out].shape[0]) if out in state else 10
    return {"model": model, "input_shape": list(INPUT_SHAPES[dataset]),
            "num_classes": num_classes}


def build(arch: dict) -> nn.Module:
    """A model of the recorded architecture; its initial weights are drawn under a forked RNG
    (they are overwritten at once), so building one leaves the caller's random stream alone."""
    with torch.random.fork_rng(devices=[]):
        if arch.get("model") == "gpt":
            fields = {k: arch.get(k) for k in GPT_FIELDS}
            extra = sorted(set(arch) - set(GPT_FIELDS) - {"model"})
            if extra:
                raise ValueError(f"unknown architecture fields {extra}")
            return GPT(GPTConfig(**fields))
        if arch.get("model") not in MODELS:
            raise ValueError(f"unknown model {arch.get('model')!r}")
        extra = sorted(set(arch) - {"model", "input_shape", "num_classes"})
        if extra:
            raise ValueError(f"unknown architecture fields {extra}")
        shape = arch.get("input_shape")
        if not isinstance(shape, list):
            raise ValueError(f"input_shape must be a list, got {shape!r}")
        return build_model(arch["model"], input_shape=tuple(shape),
                           num_classes=arch.get("num_classes"))


def example_input(arch: dict, batch: int = 1, tokens: int = 0) -> Tensor:
    """A deterministic input for the architecture: images of its input_shape, or for the GPT
    `tokens` token ids (default: block_size)."""
    gen = torch.Generator().manual_seed(0)
    if arch["model"] == "gpt":
        t = tokens or arch["block_size"]
        return torch.randint(arch["vocab_size"], (batch, t), generator=gen)
    return torch.randn((batch, *arch["input_shape"]), generator=gen)


def tied_aliases(model: nn.Module) -> Dict[str, str]:
    """{later name: first name} of every parameter listed under more than one name."""
    first: Dict[int, str] = {}
    out: Dict[str, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            out[name] = first[id(p)]
        else:
            first[id(p)] = name
    return out


def saved_names(model: nn.Module) -> Sequence[str]:
    """The state_dict names a checkpoint holds: all, but a tied parameter once."""
    aliases = tied_aliases(model)
    return [k for k in model.state_dict() if k not in aliases]
