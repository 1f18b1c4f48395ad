"""Conv-2, Conv-4 and Conv-6: the VGG-like CIFAR-10 networks of Frankle & Carbin (2019), Figure 2.

Each block is two 3x3 convolutions (padding 1) with ReLU, then a 2x2 max-pool; block widths are
64, 128, 256. Three fully connected layers (256, 256, num_classes) follow.

Parameter counts for 10 classes: Conv-2 4,301,642; Conv-4 2,425,930; Conv-6 2,262,602. The paper
lists 4.3M, 2.4M and 1.7M; its Conv-6 total disagrees with its own layer list (its 1.1M
convolutional weights are right, but the 4096 -> 256 FC layer alone has 1.05M weights), so the
architecture is followed here, not the total."""
from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

BLOCK_WIDTHS = (64, 128, 256)
FC_WIDTH = 256


class ConvNet(nn.Module):
    """Conv-`depth` for depth in {2, 4, 6}: depth // 2 blocks of two convolutions each."""

    OUTPUT_LAYER = "fc3.weight"
    IMAGE_SIZE = 32  # CIFAR-10; the first FC layer's width depends on it
    DEFAULT_INPUT_SHAPE = (3, 32, 32)

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if depth not in (2, 4, 6):
            raise ValueError(f"ConvNet depth must be 2, 4 or 6, got {depth!r}")
        self.depth = depth
        layers = OrderedDict()
        channels = in_channels
        for block, width in enumerate(BLOCK_WIDTHS[: depth // 2], start=1):
            for i in (1, 2):
                n = 2 * (block - 1) + i
                layers[f"conv{n}"] = nn.Conv2d(channels, width, kernel_size=3, padding=1)
                layers[f"relu{n}"] = nn.ReLU()
                channels = width
            layers[f"pool{block}"] = nn.MaxPool2d(kernel_size=2, stride=2)
        self.features = nn.Sequential(layers)

        # Every pool halves the image, so the flattened feature map shrinks as depth grows: this
        # is why Conv-6 has fewer parameters than Conv-2 (the FC layers dominate).
        side = self.IMAGE_SIZE >> (depth // 2)
        self.fc1 = nn.Linear(channels * side * side, FC_WIDTH)
        self.fc2 = nn.Linear(FC_WIDTH, FC_WIDTH)
        self.fc3 = nn.Linear(FC_WIDTH, num_classes)
        self.relu = nn.ReLU()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Gaussian Glorot weights and zero biases, as the paper uses for all its Conv-N nets.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x).flatten(1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)
