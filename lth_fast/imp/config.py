"""IMPConfig: everything that defines an IMP experiment. Two runs with equal configs (and the
same thread count) produce the same tickets and metrics; config.json in the run directory is
this dataclass as JSON, and a restarted run must match it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

OPTIMIZERS = ("sgd", "adam", "adamw")
SCOPES = ("layer", "global", "nm")
REWINDS = ("init", "iteration", "lr")
SCHEDULES = ("step", "cosine")
# reinit: the ticket's masks on a fresh initialisation; random: random masks of the same
# per-layer sparsity; init: the ticket's masks on the initial weights, trained from iteration 0
# (rewinding to init beside late rewinding to k)
CONTROLS = ("reinit", "random", "init")
TEXT_DATASETS = ("pydoc", "text")   # character corpora (lth_fast.data.text), for model "gpt"


@dataclass
class IMPConfig:
    # what is trained, on what
    model: str = "lenet_300_100"
    dataset: str = "mnist5k"
    data_dir: Optional[str] = None
    val_size: Optional[int] = None    # None: the dataset's default split
    test_size: Optional[int] = None   # mnist5k only (the others have a fixed test set)
    augment: bool = False             # random crop + flip (CIFAR)
    text_file: Optional[str] = None   # dataset "text": any UTF-8 file
    text_sha256: Optional[str] = None  # the corpus checksum; filled in by the run, then checked
    text_python: Optional[str] = None  # the Python whose pydoc_data gave the text (recorded)
    # the GPT's shape (model "gpt")
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    block_size: int = 64
    # how it is trained (each level the same way)
    optimizer: str = "adam"
    lr: float = 1.2e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    beta2: float = 0.999              # Adam / AdamW
    batch_size: int = 60
    iterations: int = 1200
    warmup: int = 0                   # iterations of linear LR warm-up
    milestones: Tuple[int, ...] = ()  # iterations at which the LR is multiplied by gamma
    gamma: float = 0.1
    schedule: str = "step"            # step: x gamma at milestones; cosine: to min_lr at the end
    min_lr: float = 0.0
    grad_clip: Optional[float] = None  # max global gradient norm
    eval_every: int = 25
    # how it is pruned
    levels: int = 14                  # pruning rounds after the dense level 0
    scope: str = "layer"              # layer | global | nm (n of every m input weights kept)
    rate: float = 0.2                 # fraction of the surviving weights pruned per level
    output_rate: Optional[float] = 0.1   # the classifier's rate (None: `rate`)
    layer_rates: Dict[str, float] = field(default_factory=dict)   # scope="layer" only
    ignore: Tuple[str, ...] = ()      # parameter names never pruned
    nm_n: int = 2                     # scope="nm": keep nm_n of every nm_m consecutive input
    nm_m: int = 4                     # weights (NVIDIA's 2:4 by default)
    rewind: str = "init"              # init | iteration (to rewind_iteration) | lr (Renda et al.)
    rewind_iteration: int = 0
    controls: Tuple[str, ...] = ("reinit", "random")
    # Early-Bird: level 0 stops once the masks level 1 would draw have settled (the largest
    # normalized Hamming distance from the newest of the last early_bird_window masks, drawn at
    # every evaluation, to the older ones is below early_bird); None trains level 0 to the end
    early_bird: Optional[float] = None
    early_bird_window: int = 5
    # where and with which randomness
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.milestones = tuple(int(m) for m in self.milestones)
        self.ignore = tuple(self.ignore)
        self.controls = tuple(self.controls)
        self.layer_rates = dict(self.layer_rates)
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"IMPConfig: {what}")

        need(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got "
             f"{self.schedule!r}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got "
             f"{self.optimizer!r}")
        need(self.scope in SCOPES, f"scope must be one of {SCOPES}, got {self.scope!r}")
        need(self.rewind in REWINDS, f"rewind must be one of {REWINDS}, got {self.rewind!r}")
        bad = [c for c in self.controls if c not in CONTROLS]
        need(not bad, f"controls {bad} unknown; known: {CONTROLS}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        for name in ("batch_size", "iterations", "eval_every"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("levels", "warmup", "rewind_iteration", "seed"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        need(self.rewind_iteration < self.iterations,
             f"rewind_iteration ({self.rewind_iteration}) must be < iterations "
             f"({self.iterations})")
        need(self.rewind == "iteration" or self.rewind == "lr" or self.rewind_iteration == 0,
             f"rewind_iteration={self.rewind_iteration} needs rewind='iteration' or 'lr'")
        rates = {"rate": self.rate, "output_rate": self.output_rate,
                 **{f"layer_rates[{k!r}]": v for k, v in self.layer_rates.items()}}
        for what, r in rates.items():
            need(r is None or 0.0 <= r < 1.0, f"{what} must be in [0, 1), got {r}")
        need(self.scope != "global" or (not self.layer_rates and self.output_rate is None),
             "per-layer rates (output_rate, layer_rates) need scope='layer'; a global ranking "
             "takes one rate (set output_rate to None)")
        need(1 <= self.nm_n <= self.nm_m <= 64, f"N:M needs 1 <= n <= m <= 64, got "
             f"{self.nm_n}:{self.nm_m}")
        need(self.scope == "nm" or (self.nm_n, self.nm_m) == (2, 4),
             f"nm_n:nm_m ({self.nm_n}:{self.nm_m}) applies to scope='nm' (--scope nm), not "
             f"scope={self.scope!r}")
        # the N:M rule is reached in one step: a second level would prune nothing more
        need(self.scope != "nm" or self.levels <= 1, f"scope 'nm' reaches its {self.nm_n}:"
             f"{self.nm_m} pattern in one level; give levels=1 (--levels 1), not {self.levels}")
        need(self.early_bird is None or 0.0 < self.early_bird <= 1.0,
             f"early_bird (eps) must be a distance in (0, 1], got {self.early_bird}")
        need(self.early_bird_window >= 2, f"early_bird_window must be >= 2, got "
             f"{self.early_bird_window}")
        need(all(m > 0 for m in self.milestones), f"milestones must be > 0: {self.milestones}")
        need(self.test_size is None or self.dataset == "mnist5k",
             f"test_size applies to mnist5k only ({self.dataset} has its own test set)")
        need(0.0 < self.gamma <= 1.0, f"gamma must be in (0, 1], got {self.gamma}")
        need(0.0 <= self.beta2 < 1.0, f"beta2 must be in [0, 1), got {self.beta2}")
        need(0.0 <= self.min_lr <= self.lr, f"min_lr must be in [0, lr], got {self.min_lr}")
        need(self.grad_clip is None or self.grad_clip > 0,
             f"grad_clip must be > 0 (or None), got {self.grad_clip}")
        need(self.schedule == "step" or not self.milestones,
             "milestones apply to schedule='step'")
        need("init" not in self.controls or (self.rewind == "iteration"
                                             and self.rewind_iteration > 0),
             "the 'init' arm (rewinding to init) is the second arm of late rewinding: it needs "
             "rewind='iteration' with rewind_iteration > 0")
        text = self.dataset in TEXT_DATASETS
        need(text == (self.model == "gpt"), f"model {self.model!r} does not fit dataset "
             f"{self.dataset!r}: the gpt model trains on the text datasets {TEXT_DATASETS}, the "
             f"image models on the others")
        need((self.dataset == "text") == (self.text_file is not None),
             "dataset 'text' reads --text-file PATH (and only it does)")
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            need(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        need(self.n_embd % self.n_head == 0,
             f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        need(_parses_as_device(self.device), f"device must be cpu, cuda or cuda:N (a torch "
             f"device), got {self.device!r}")

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "IMPConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"IMPConfig: unknown fields {unknown}")
        return cls(**d)

    def replace(self, **changes) -> "IMPConfig":
        return dataclasses.replace(self, **changes)

    def differences(self, other: "IMPConfig") -> List[str]:
        """The fields where two configs differ, as 'name: a != b' lines."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k]]

    def with_corpus(self, sha256: str, python: Optional[str]) -> "IMPConfig":
        """This config with the corpus it read recorded; a config that already names another
        checksum is refused (the text changed, e.g. another Python's pydoc_data)."""
        if self.text_sha256 not in (None, sha256):
            raise ValueError(f"the text read has SHA-256 {sha256[:12]}..., the experiment's "
                             f"config names {self.text_sha256[:12]}... (Python "
                             f"{self.text_python or '?'}): this text is not that experiment's")
        return self.replace(text_sha256=sha256, text_python=python)


def _parses_as_device(text) -> bool:
    import torch  # here: the config module itself needs no torch to load
    try:
        torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True
