"""IMPConfig: everything that defines an IMP experiment, in five groups that each check their own
fields: data (what it trains on), model (the network), training (how each level trains),
pruning (how levels prune, rewind and compare) and run (seeds, device, what is kept). Two runs
with equal configs (and the same thread count) produce the same tickets and metrics.

config.json in the run directory is this config as JSON, one object per group; a restarted
run must match it. A file written before the groups (one flat object) reads the same.

Adding a field (docs/architecture.md, "A new config field"): put it in its group with a default
that changes nothing, so a run directory written before it reads that default and resumes
unchanged; check it in the group's check(); give it a flag in lth_fast.imp.cli.

Errors are ConfigError (lth_fast.pruning.rule): they name fields (`training.lr`), and the
command line shows the same message with its flags (`--lr`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..pruning.rule import ConfigError, need
from .config_pruning import REWINDS, PruningConfig
from .streams import SEEDS

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("step", "cosine")
TEXT_DATASETS = ("pydoc", "text")   # character corpora (lth_fast.data.text), for model "gpt"


@dataclass
class DataConfig:
    dataset: str = "mnist5k"
    data_dir: Optional[str] = None
    val_size: Optional[int] = None    # None: the dataset's default split
    test_size: Optional[int] = None   # mnist5k only (the others have a fixed test set)
    augment: bool = False             # random crop + flip (CIFAR)
    text_file: Optional[str] = None   # dataset "text": any UTF-8 file
    text_sha256: Optional[str] = None  # the corpus checksum; filled in by the run, then checked
    text_python: Optional[str] = None  # the Python whose pydoc_data gave the text (recorded)
    # the seed of the data order and augmentation (None: the run's seed), so two runs can share
    # an initialisation and differ only in the order they see the data (lth_fast.imp.streams)
    data_seed: Optional[int] = None

    def check(self) -> None:
        files = self.dataset not in ("mnist5k",) + TEXT_DATASETS   # read from --data-dir
        need(self.data_dir is None or files, f"{{0}} applies to the data sets read from files "
             f"(mnist, cifar10); {self.dataset!r} has its own", "data_dir")
        need(self.val_size is None or self.dataset not in TEXT_DATASETS,
             f"{{0}} applies to the image data sets; the text {self.dataset!r} has a fixed "
             f"split", "val_size")
        need(not self.augment or self.dataset == "cifar10",
             f"{{0}} (random crop + flip) applies to cifar10, not {self.dataset!r}", "augment")
        need(self.test_size is None or self.dataset == "mnist5k",
             f"{{0}} applies to mnist5k only ({self.dataset} has its own test set)", "test_size")
        need((self.dataset == "text") == (self.text_file is not None),
             "dataset 'text' reads a text file, {0} (and only it does)", "text_file")
        need(self.data_seed is None or 0 <= self.data_seed < SEEDS,
             f"{{0}} must be in [0, {SEEDS:,}) (or None: the run's seed), got {self.data_seed}",
             "data_seed")


@dataclass
class ModelConfig:
    name: str = "lenet_300_100"
    # the GPT's shape (model "gpt")
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    block_size: int = 64

    def check(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            need(getattr(self, name) >= 1, f"{{0}} must be >= 1, got {getattr(self, name)}", name)
        need(self.n_embd % self.n_head == 0,
             f"{{0}} ({self.n_embd}) must be a multiple of {{1}} ({self.n_head})",
             "n_embd", "n_head")


@dataclass
class TrainingConfig:
    """How each level trains (the same way every level)."""
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

    def __post_init__(self) -> None:
        self.milestones = tuple(int(m) for m in self.milestones)

    def check(self) -> None:
        need(self.schedule in SCHEDULES, f"{{0}} must be one of {SCHEDULES}, got "
                                         f"{self.schedule!r}", "schedule")
        need(self.optimizer in OPTIMIZERS, f"{{0}} must be one of {OPTIMIZERS}, got "
                                           f"{self.optimizer!r}", "optimizer")
        need(self.lr > 0, f"{{0}} must be > 0, got {self.lr}", "lr")
        for name in ("batch_size", "iterations", "eval_every"):
            need(getattr(self, name) >= 1, f"{{0}} must be >= 1, got {getattr(self, name)}", name)
        need(self.warmup >= 0, f"{{0}} must be >= 0, got {self.warmup}", "warmup")
        need(all(m > 0 for m in self.milestones), f"{{0}} must be > 0: {self.milestones}",
             "milestones")
        need(0.0 < self.gamma <= 1.0, f"{{0}} must be in (0, 1], got {self.gamma}", "gamma")
        need(0.0 <= self.beta2 < 1.0, f"{{0}} must be in [0, 1), got {self.beta2}", "beta2")
        need(0.0 <= self.min_lr <= self.lr, f"{{0}} must be in [0, {{1}}], got {self.min_lr}",
             "min_lr", "lr")
        need(self.grad_clip is None or self.grad_clip > 0,
             f"{{0}} must be > 0 (or None), got {self.grad_clip}", "grad_clip")
        need(self.schedule == "step" or not self.milestones,
             "{0} apply to {1}='step'", "milestones", "schedule")
        # a setting the chosen optimizer or schedule does not read is refused, not ignored
        sgd = self.optimizer == "sgd"
        for name, unused in (("momentum", self.momentum != 0.0), ("nesterov", self.nesterov)):
            need(sgd or not unused, f"{{0}} applies to {{1}}='sgd', not {self.optimizer!r}",
                 name, "optimizer")
        need(not sgd or self.beta2 == 0.999, "{0} applies to {1} 'adam' and 'adamw', not "
             "'sgd'", "beta2", "optimizer")
        need(self.schedule == "cosine" or self.min_lr == 0.0,
             f"{{0}} is where {{1}}='cosine' ends; {self.schedule!r} does not read it",
             "min_lr", "schedule")
        need(self.schedule == "step" or self.gamma == 0.1,
             "{0} multiplies the rate at {1}='step' milestones; 'cosine' does not read it",
             "gamma", "schedule")


@dataclass
class RunConfig:
    """Where, with which randomness, and what the run directory keeps besides its levels."""
    seed: int = 0                     # the initialisation and each branch (lth_fast.imp.streams)
    device: str = "cpu"
    # iterations of level 0 whose whole model is kept (run_dir/points/), e.g. candidate rewind
    # points; empty: only the rewind point
    keep_points: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.keep_points = tuple(int(k) for k in self.keep_points)

    def check(self) -> None:
        need(0 <= self.seed < SEEDS, f"{{0}} must be in [0, {SEEDS:,}), got {self.seed}", "seed")
        need(_parses_as_device(self.device), f"{{0}} must be cpu, cuda or cuda:N (a torch "
                                             f"device), got {self.device!r}", "device")
        need(all(k >= 0 for k in self.keep_points), f"{{0}} must be >= 0: {self.keep_points}",
             "keep_points")


GROUPS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig,
          "pruning": PruningConfig, "run": RunConfig}
# the flat names (presets, config.json before the groups, IMPConfig.of): name -> (group, field)
FLAT: Dict[str, Tuple[str, str]] = {("model" if (g, f.name) == ("model", "name") else f.name):
                                    (g, f.name)
                                    for g, cls in GROUPS.items() for f in dataclasses.fields(cls)}


@dataclass
class IMPConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def of(cls, **flat) -> "IMPConfig":
        """A config from flat field names (lr=..., levels=..., model="gpt"), the rest defaults."""
        groups: Dict[str, dict] = {g: {} for g in GROUPS}
        unknown = sorted(set(flat) - set(FLAT))
        if unknown:
            raise ConfigError(f"unknown fields {unknown}", prefix="IMPConfig: ")
        for name, value in flat.items():
            g, f = FLAT[name]
            groups[g][f] = value
        return cls(**{g: GROUPS[g](**kw) for g, kw in groups.items()})

    def validate(self) -> None:
        """Each group's own checks, then those between groups; a ConfigError names the fields
        qualified by group (pruning.rate)."""
        group = None
        try:
            for group in GROUPS:
                getattr(self, group).check()
            group = "IMPConfig"
            self._check_across()
        except ConfigError as e:
            raise e.within(group, "IMPConfig: ") from None

    def _check_across(self) -> None:
        d, m, t, p = self.data, self.model, self.training, self.pruning
        need(p.rewind_iteration < t.iterations,
             f"{{0}} ({p.rewind_iteration}) must be < {{1}} ({t.iterations})",
             "pruning.rewind_iteration", "training.iterations")
        text = d.dataset in TEXT_DATASETS
        default = ModelConfig()
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            need(m.name == "gpt" or getattr(m, name) == getattr(default, name),
                 f"{{0}} shapes the gpt model, not {m.name!r}", f"model.{name}")
        need(not text or m.name == "gpt", f"{{1}} {d.dataset!r} is text: it trains {{0}} 'gpt', "
             f"not {m.name!r}", "model.name", "data.dataset")
        need(text or m.name != "gpt", f"{{0}} 'gpt' trains on the text datasets "
             f"{TEXT_DATASETS}, not {{1}} {d.dataset!r}", "model.name", "data.dataset")
        need(all(k < t.iterations for k in p.rewind_candidates),
             f"{{0}} must be < {{1}} ({t.iterations}): {list(p.rewind_candidates)}",
             "pruning.rewind_candidates", "training.iterations")
        need(all(k <= t.iterations for k in self.run.keep_points),
             f"{{0}} must be <= {{1}} ({t.iterations}): {self.run.keep_points}",
             "run.keep_points", "training.iterations")

    # -- derived -----------------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def data_seed(self) -> int:
        """The data order's seed: data.data_seed, or the run's seed."""
        return self.run.seed if self.data.data_seed is None else self.data.data_seed

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """{group: {field: value}}, tuples as lists."""
        return {g: {k: list(v) if isinstance(v, tuple) else v
                    for k, v in dataclasses.asdict(getattr(self, g)).items()} for g in GROUPS}

    def flat(self) -> dict:
        """{flat name: value} (IMPConfig.of's names)."""
        d = self.to_dict()
        return {name: d[g][f] for name, (g, f) in FLAT.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "IMPConfig":
        """A config from to_dict()'s groups, or from one flat object (config.json files written
        before the groups); missing fields take their defaults."""
        if not set(d) & set(GROUPS) or set(d) - set(GROUPS):
            return cls.of(**d)
        for g, kw in d.items():
            if not isinstance(kw, dict):
                raise ConfigError(f"group {g!r} must be an object, got {type(kw).__name__}",
                                  prefix="IMPConfig: ")
            names = {f.name for f in dataclasses.fields(GROUPS[g])}
            unknown = sorted(set(kw) - names)
            if unknown:
                raise ConfigError(f"unknown fields {unknown} in group {g!r}",
                                  prefix="IMPConfig: ")
        return cls(**{g: GROUPS[g](**d.get(g, {})) for g in GROUPS})

    def replace(self, **flat) -> "IMPConfig":
        """This config with flat fields changed (IMPConfig.of's names)."""
        return IMPConfig.of(**{**self.flat(), **flat})

    def differences(self, other: "IMPConfig") -> List[str]:
        """The fields where two configs differ, as 'group.field: a != b' lines."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{g}.{k}: {a[g][k]!r} != {b[g][k]!r}" for g in GROUPS for k in a[g]
                if a[g][k] != b[g][k]]

    def with_corpus(self, sha256: str, python: Optional[str]) -> "IMPConfig":
        """This config with the corpus it read recorded; a config that already names another
        checksum is refused (the text changed, e.g. another Python's pydoc_data)."""
        d = self.data
        if d.text_sha256 not in (None, sha256):
            raise ValueError(f"the text read has SHA-256 {sha256[:12]}..., the experiment's "
                             f"config names {d.text_sha256[:12]}... (Python "
                             f"{d.text_python or '?'}): this text is not that experiment's")
        return self.replace(text_sha256=sha256, text_python=python)


def _parses_as_device(text) -> bool:
    import torch  # here: the config module itself needs no torch to load
    try:
        torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


__all__ = ["ConfigError", "DataConfig", "IMPConfig", "ModelConfig", "PruningConfig",
           "RunConfig", "TrainingConfig", "FLAT", "GROUPS", "OPTIMIZERS", "REWINDS",
           "SCHEDULES", "TEXT_DATASETS"]
