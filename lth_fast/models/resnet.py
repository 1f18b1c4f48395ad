"""ResNet-20 for CIFAR-10 (He et al. 2016), laid out as open_lth's cifar_resnet_20.

A 3x3 convolution with 16 filters, then three stages of three basic blocks (16, 32, 64 filters),
global average pooling and one linear layer: 272,474 parameters for 10 classes (the "0.27M" of
Frankle & Carbin)."""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

STAGE_WIDTHS = (16, 32, 64)
BLOCKS_PER_STAGE = 3  # depth 20 = 2 + 6 * 3


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers around a residual connection."""

    def __init__(self, f_in: int, f_out: int, stride: int = 1):
        super().__init__()
        # No conv biases: each convolution is followed by BN, whose shift makes a bias redundant.
        self.conv1 = nn.Conv2d(f_in, f_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(f_out)
        self.conv2 = nn.Conv2d(f_out, f_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(f_out)
        if stride != 1 or f_in != f_out:
            # A learned 1x1 projection (open_lth's choice, He et al.'s option B) where the shape
            # changes; identity otherwise.
            self.shortcut = nn.Sequential(
                nn.Conv2d(f_in, f_out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(f_out))
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """ResNet-20; global pooling makes it accept any image size, and in_channels any channels."""

    OUTPUT_LAYER = "fc.weight"
    IMAGE_SIZE = None  # any: global average pooling removes the spatial dimensions
    DEFAULT_INPUT_SHAPE = (3, 32, 32)

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        width = STAGE_WIDTHS[0]
        self.conv = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks = []
        for stage, f_out in enumerate(STAGE_WIDTHS):
            for i in range(BLOCKS_PER_STAGE):
                # Stages 2 and 3 halve the feature map in their first block.
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(width, f_out, stride))
                width = f_out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(width, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # open_lth's kaiming_normal initializer: torch's default kaiming_normal_ (fan_in, gain
        # sqrt(2)) on conv and linear weights. BN starts as the identity and biases at zero, so
        # a rewound ticket depends only on the random weights.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)
