"""LeNet-300-100: the fully connected MNIST network of Frankle & Carbin (2019), Figure 2."""
from __future__ import annotations

from torch import Tensor, nn


class LeNet300100(nn.Module):
    """784 -> 300 -> 100 -> num_classes, ReLU between layers (266,610 parameters for 10 classes).

    The layers are named fc1/fc2/fc3 so that pruning code can address them by name; the paper
    prunes fc3 (the output layer) at half the rate of the others."""

    OUTPUT_LAYER = "fc3.weight"
    INPUT_FEATURES = 28 * 28
    DEFAULT_INPUT_SHAPE = (1, 28, 28)

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(self.INPUT_FEATURES, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)
        self.relu = nn.ReLU()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The paper draws weights from a Gaussian Glorot distribution and starts biases at zero;
        # a winning ticket is defined relative to this initialization, so keep it exact.
        for fc in (self.fc1, self.fc2, self.fc3):
            nn.init.xavier_normal_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        # Accept MNIST images [N, 1, 28, 28] as well as flat vectors [N, 784].
        x = x.flatten(1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)
