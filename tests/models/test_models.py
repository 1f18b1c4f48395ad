"""lth_fast.models: shapes, gradients, parameter counts against Frankle & Carbin (2019) Figure 2,
the output layer name, build_model's argument checks, and the initialization."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lth_fast.models import MODELS, ConvNet, LeNet300100, build_model, output_layer

# Exact counts for 10 classes, computed by hand from the layer lists (weights + biases + BN).
PARAMS = {
    "lenet_300_100": 266_610,
    "conv2": 4_301_642,
    "conv4": 2_425_930,
    "conv6": 2_262_602,
    "resnet20": 272_474,
    "vgg16": 14_728_266,
}
# The paper's rounded totals (open_lth's for VGG-16, which the paper does not use).
PAPER = {
    "lenet_300_100": 266e3, "conv2": 4.3e6, "conv4": 2.4e6, "resnet20": 0.274e6, "vgg16": 14.7e6,
}
# Conv-N convolutional weights (no biases) as the paper lists them: 38K, 260K, 1.1M.
PAPER_CONV_WEIGHTS = {2: 38e3, 4: 260e3, 6: 1.1e6}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Batches of 2 are too small to gain from intra-op threads; on a busy machine the threads
    # only wait on each other (a ResNet-20 forward pass went from 15 ms to over 1 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_count(name):
    assert n_params(build_model(name)) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(PAPER))
def test_parameter_count_matches_paper(name):
    assert PARAMS[name] == pytest.approx(PAPER[name], rel=0.02)


@pytest.mark.parametrize("depth", [2, 4, 6])
def test_conv_weights_match_paper(depth):
    # The paper's Conv-6 total (1.7M) disagrees with its own layers; its convolutional weight
    # count (1.1M) does not, so that is what is checked for all three.
    model = ConvNet(depth)
    conv = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    assert conv == pytest.approx(PAPER_CONV_WEIGHTS[depth], rel=0.05)


def test_conv6_fc_layer_count():
    # 256 channels at 4x4 after three pools: the first FC layer alone has 4096*256 weights.
    assert ConvNet(6).fc1.in_features == 4096


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_backward(name):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7)
    shape = model.DEFAULT_INPUT_SHAPE
    x = torch.randn(2, *shape)
    out = model(x)
    assert out.shape == (2, 7)
    out.square().sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert model.get_parameter(output_layer(model)).grad.abs().sum() > 0


def test_lenet_accepts_flat_and_image_input():
    torch.manual_seed(0)
    model = LeNet300100()
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(model(x), model(x.reshape(3, 784)))


def test_resnet_other_channels_and_sizes():
    model = build_model("resnet20", input_shape=(1, 16, 24), num_classes=5)
    assert model(torch.randn(2, 1, 16, 24)).shape == (2, 5)


@pytest.mark.parametrize("name", ["conv4", "vgg16"])
def test_fixed_size_nets_take_other_channel_counts(name):
    model = build_model(name, input_shape=(1, 32, 32))
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_layer_is_final_linear(name):
    model = build_model(name, num_classes=3)
    pname = output_layer(model)
    module = model.get_submodule(pname.rsplit(".", 1)[0])
    assert isinstance(module, nn.Linear) and module.out_features == 3
    assert pname == type(model).OUTPUT_LAYER
    # It is the last Linear in the model, i.e. the classifier.
    assert [m for m in model.modules() if isinstance(m, nn.Linear)][-1] is module


def test_output_layer_rejects_model_without_one():
    with pytest.raises(TypeError, match="OUTPUT_LAYER"):
        output_layer(nn.Linear(2, 2))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="resnet56") as err:
        build_model("resnet56")
    for known in MODELS:
        assert known in str(err.value)


@pytest.mark.parametrize("name,shape,expect", [
    ("lenet_300_100", (3, 32, 32), "784"),
    ("lenet_300_100", (1, 28), "784"),
    ("conv2", (3, 28, 28), "32x32"),
    ("conv6", (784,), "channels, height, width"),
    ("vgg16", (3, 64, 64), "32x32"),
    ("resnet20", (3, 32), "channels, height, width"),
    ("resnet20", (0, 32, 32), "positive"),
])
def test_mismatched_input_shape(name, shape, expect):
    with pytest.raises(ValueError, match=expect) as err:
        build_model(name, input_shape=shape)
    assert name in str(err.value)


@pytest.mark.parametrize("shape", [(1, 28, 28), (784,), (28, 28)])
def test_lenet_input_shapes_accepted(shape):
    assert n_params(build_model("lenet_300_100", input_shape=shape)) == PARAMS["lenet_300_100"]


@pytest.mark.parametrize("num_classes", [0, -1, 2.0, True])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        build_model("conv2", num_classes=num_classes)


def _weights(name, seed):
    torch.manual_seed(seed)
    return build_model(name).state_dict()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_init_deterministic_under_seed(name):
    a, b, c = _weights(name, 1), _weights(name, 1), _weights(name, 2)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # Every conv and linear weight is redrawn by a different seed (BN weights start at 1).
    drawn = [k for k in a if k.endswith("weight") and a[k].dim() > 1]
    assert MODELS[name].cls.OUTPUT_LAYER in drawn
    for key in drawn:
        assert not torch.equal(a[key], c[key]), key


def test_lenet_glorot_normal_init():
    torch.manual_seed(0)
    model = LeNet300100()
    for fc in (model.fc1, model.fc2, model.fc3):
        w = fc.weight.detach()
        expected = math.sqrt(2.0 / (fc.in_features + fc.out_features))
        # The sample std of n Gaussian draws has relative spread about 1/sqrt(2n).
        tol = 5 / math.sqrt(2 * w.numel())
        assert w.std().item() == pytest.approx(expected, rel=tol)
        assert w.mean().abs().item() < 5 * expected / math.sqrt(w.numel())
        assert torch.count_nonzero(fc.bias) == 0


@pytest.mark.parametrize("name", ["resnet20", "vgg16"])
def test_kaiming_normal_init(name):
    torch.manual_seed(0)
    model = build_model(name)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            tol = max(0.02, 5 / math.sqrt(2 * m.weight.numel()))
            assert m.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=tol)
            assert m.bias is None or torch.count_nonzero(m.bias) == 0
        elif isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.count_nonzero(m.bias) == 0
