"""The networks of Frankle & Carbin (2019) and open_lth, by name.

    model = build_model("conv4", input_shape=(3, 32, 32), num_classes=10)
    pruner = Pruner(model)  # output_layer(model) names the classifier, pruned at a lower rate
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from torch import nn

from .conv import ConvNet
from .gpt import GPT, GPTConfig
from .lenet import LeNet300100
from .resnet import ResNet20
from .vgg import VGG16


@dataclass(frozen=True)
class ModelSpec:
    """A model class and the positional arguments that pick one variant of it (Conv-N's depth)."""
    cls: type
    args: Tuple = ()


MODELS = {
    "lenet_300_100": ModelSpec(LeNet300100),
    "conv2": ModelSpec(ConvNet, (2,)),
    "conv4": ModelSpec(ConvNet, (4,)),
    "conv6": ModelSpec(ConvNet, (6,)),
    "resnet20": ModelSpec(ResNet20),
    "vgg16": ModelSpec(VGG16),
}


def _input_kwargs(name: str, cls: type, shape: Tuple[int, ...]) -> dict:
    """Checks that `shape` (one example, no batch dimension) fits model `name`; returns the
    constructor arguments it implies. Checked here so a mismatch fails at construction with a
    message, not deep in the first forward pass as a matmul shape error."""
    if any(not isinstance(d, int) or d < 1 for d in shape):
        raise ValueError(f"{name}: input_shape must be positive ints, got {shape}")
    if cls is LeNet300100:
        if math.prod(shape) != cls.INPUT_FEATURES:
            raise ValueError(
                f"{name} expects {cls.INPUT_FEATURES} input features (e.g. (1, 28, 28) or "
                f"(784,)), got input_shape {shape} with {math.prod(shape)}")
        return {}
    if len(shape) != 3:
        raise ValueError(f"{name} expects images shaped (channels, height, width), "
                         f"e.g. {cls.DEFAULT_INPUT_SHAPE}; got input_shape {shape}")
    size = cls.IMAGE_SIZE
    if size is not None and shape[1:] != (size, size):
        # The first linear layer's width is fixed by the image size (and the paper's
        # parameter counts with it), so other sizes are refused rather than adapted to.
        raise ValueError(f"{name} expects {size}x{size} images (C, {size}, {size}), "
                         f"got input_shape {shape}")
    return {"in_channels": shape[0]}


def build_model(name: str, *, input_shape: Optional[Sequence[int]] = None,
                num_classes: int = 10) -> nn.Module:
    """A freshly initialized model (draws from torch's global RNG, so torch.manual_seed fixes it).

    input_shape is one example's shape, without the batch dimension; None takes the model's
    own (MNIST (1, 28, 28) for LeNet, CIFAR (3, 32, 32) otherwise)."""
    spec = MODELS.get(name)
    if spec is None:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    shape = tuple(spec.cls.DEFAULT_INPUT_SHAPE if input_shape is None else input_shape)
    kwargs = _input_kwargs(name, spec.cls, shape)
    return spec.cls(*spec.args, num_classes=num_classes, **kwargs)


def output_layer(model: nn.Module) -> str:
    """The parameter name of the model's final classifier weight (e.g. "fc3.weight")."""
    name = getattr(type(model), "OUTPUT_LAYER", None)
    if name is None:
        raise TypeError(f"{type(model).__name__} declares no OUTPUT_LAYER")
    if name not in dict(model.named_parameters()):
        raise ValueError(f"{type(model).__name__}.OUTPUT_LAYER {name!r} is not a parameter")
    return name


__all__ = ["MODELS", "ModelSpec", "build_model", "output_layer",
           "LeNet300100", "ConvNet", "ResNet20", "VGG16", "GPT", "GPTConfig"]
