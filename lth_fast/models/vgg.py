"""VGG-16 for CIFAR-10, laid out as open_lth's cifar_vgg_16.

Thirteen 3x3 conv + BN + ReLU layers with four 2x2 max-pools, then a 2x2 average pool down to
1x1 and one linear layer: 14,728,266 parameters for 10 classes."""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

# Output channels of each convolution; "M" is a 2x2 max-pool.
PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


class ConvModule(nn.Module):
    """3x3 conv (padding 1) + BN + ReLU."""

    def __init__(self, f_in: int, f_out: int):
        super().__init__()
        # open_lth keeps the conv bias even though BN follows; kept for the same parameter count.
        self.conv = nn.Conv2d(f_in, f_out, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(f_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class VGG16(nn.Module):
    OUTPUT_LAYER = "fc.weight"
    # Four max-pools take 32 to 2 and the final 2x2 average pool to 1, so fc sees exactly 512.
    IMAGE_SIZE = 32
    DEFAULT_INPUT_SHAPE = (3, 32, 32)

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        layers = []
        channels = in_channels
        for spec in PLAN:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers.append(ConvModule(channels, spec))
                channels = spec
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Kaiming normal (torch defaults: fan_in, gain sqrt(2)) as open_lth's kaiming_normal;
        # BN starts as the identity and biases at zero so the init is the weights alone.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(x)
        x = F.avg_pool2d(x, 2).flatten(1)
        return self.fc(x)
