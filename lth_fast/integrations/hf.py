"""Lottery tickets inside the Hugging Face Trainer: IMP levels of `epochs_per_level` epochs each.

    from lth_fast.integrations.hf import LotteryTicket
    lt = LotteryTicket(levels=3, epochs_per_level=1)     # 20% per level of the block Linears
    args = TrainingArguments("out", num_train_epochs=lt.num_train_epochs,
                             lr_scheduler_type="constant")
    Trainer(model=model, args=args, train_dataset=data, callbacks=[lt]).train()

After each level's last epoch (its evaluation and checkpoint included) it prunes, rewinds every
weight to the rewind point (step 0, or rewind_step=k), clears the optimizer's state and rewinds
the learning-rate scheduler (lth_fast.integrations.levels). The optimizer Accelerate wraps is
masked through its step hooks (Pruner.attach), or reads the masks itself if it is a
MaskedAdamW/MaskedAdam/MaskedSGD.

- Selection: "transformer" by default, the Linear weights of the numbered blocks, with
  transformers' Conv1D (GPT-2) counted as Linear. Embeddings, LayerNorms, biases and heads stay
  dense, and a head tied to the embedding is left alone.
- The schedule: a rewound level replays the scheduler from the rewind point, so a schedule
  that decays over the whole run (the Trainer's default, "linear") gives each level only its
  beginning: use a constant schedule, or a warm-up then constant.
- Checkpoints: every checkpoint folder gets lth_fast_imp.safetensors (bit-packed masks, the
  rewind point, the level; no pickle), and train(resume_from_checkpoint=...) of a checkpoint of
  the same output_dir resumes with them.
- Logging: each level's density (global and per tensor) goes into the trainer's log history
  (trainer.state.log_history, trainer_state.json). With monitor="eval_loss" (any metric of the
  Trainer's evaluations; mode "min" or "max"), so does each level's early stop, the best value
  and its step. When args.report_to holds "tensorboard", all of it also goes to TensorBoard,
  under lth_fast/ in the Trainer's TensorBoard folder, with the density as the x-axis
  (lth_fast.tracking).

Needs transformers and accelerate: pip install 'lth_fast[hf]'."""
from __future__ import annotations

import json
import os
from typing import Optional

try:
    from transformers import TrainerCallback
except ImportError:
    raise ModuleNotFoundError("lth_fast.integrations.hf needs Hugging Face transformers: pip "
                              "install 'lth_fast[hf]'", name="transformers") from None

from .. import atomic
from ..tracking import LevelLog
from .levels import IMPLevels

STATE_FILE = "lth_fast_imp.safetensors"


class LotteryTicket(TrainerCallback):
    """IMP inside Trainer.train (see the module doc); the arguments are
    lth_fast.integrations.levels.IMPLevels's (levels, epochs_per_level, rate, scope,
    per_layer, nm, rewind_step, selection, include, exclude, monitor, mode), with
    selection="transformer" by default."""

    def __init__(self, *, levels: int, epochs_per_level: int, **options) -> None:
        self.imp = IMPLevels(levels=levels, epochs_per_level=epochs_per_level,
                             **{"selection": "transformer", **options})
        self._tensorboard: Optional[LevelLog] = None

    @property
    def num_train_epochs(self) -> int:
        """The epochs of the whole search (TrainingArguments' num_train_epochs)."""
        return self.imp.epochs

    pruner = property(lambda self: self.imp.pruner)
    level = property(lambda self: self.imp.level)

    # -- the Trainer's events -------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, optimizer=None,
                       lr_scheduler=None, **kwargs):
        if args.max_steps is not None and args.max_steps > 0:
            raise ValueError(f"{self.imp.where}: TrainingArguments(max_steps={args.max_steps}) "
                             f"ends training by steps; IMP's levels are epochs: give "
                             f"num_train_epochs={self.imp.epochs} and no max_steps")
        self.imp.check_budget(args.num_train_epochs, "TrainingArguments(num_train_epochs)")
        self.imp.setup(model)
        if state.global_step > 0 and not self.imp.has_rewind_point:
            self._resume(args, state)
        self.imp.attach([optimizer])
        if not self.imp.has_rewind_point and self.imp.rewind_step == 0:
            self.imp.take_rewind_point(_schedulers(lr_scheduler))
        if "tensorboard" in (args.report_to or []) and state.is_world_process_zero:
            self._tensorboard = LevelLog.tensorboard(tensorboard_dir(args), "LotteryTicket")
        if state.global_step == 0:
            self._log(state)

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        if not self.imp.has_rewind_point and state.global_step == self.imp.rewind_step:
            self.imp.take_rewind_point(_schedulers(lr_scheduler))

    def on_epoch_begin(self, args, state, control, optimizer=None, lr_scheduler=None,
                       **kwargs):
        # A level ends as the next epoch begins: after the Trainer's evaluation and checkpoint
        # at the end of the level's last epoch, which belong to the level (a checkpoint
        # resumes into this same step).
        while self.imp.level < self.imp.level_after(int(round(state.epoch or 0))):
            self._end_level(state)
            self.imp.next_level([optimizer], _schedulers(lr_scheduler))
            self._log(state)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.imp.observe(metrics or {}, state.global_step)

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if os.path.isdir(folder):
            _write_state(os.path.join(folder, STATE_FILE), self.imp.state_dict())

    def on_train_end(self, args, state, control, **kwargs):
        self._end_level(state)
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None

    # -- helpers ----------------------------------------------------------------------------------
    def _resume(self, args, state) -> None:
        path = os.path.join(args.output_dir, f"checkpoint-{state.global_step}", STATE_FILE)
        if not os.path.isfile(path):
            raise RuntimeError(f"LotteryTicket: training resumes at step {state.global_step} but "
                               f"{path} does not exist: resume from a checkpoint this callback "
                               f"saved, in the same output_dir")
        self.imp.load_state_dict(_read_state(path))

    def _end_level(self, state) -> None:
        """The finished level's early stop into the log history, and to TensorBoard at its
        density."""
        if not self.imp.end_level():
            return
        summary = self.imp.level_summary()
        if summary:
            state.log_history.append({**{f"lth_level/{k}": v for k, v in summary.items()},
                                      "lth/level": float(self.imp.level),
                                      "step": state.global_step})
        if self._tensorboard is not None:
            self.imp.track(self._tensorboard)

    def _log(self, state) -> None:
        state.log_history.append({**self.imp.metrics(), "step": state.global_step})


def tensorboard_dir(args) -> str:
    """Where the levels' scalars go: lth_fast/ under the Trainer's TensorBoard folder
    (args.logging_dir before transformers 5, TENSORBOARD_LOGGING_DIR, else output_dir/runs)."""
    root = getattr(args, "logging_dir", None) or os.environ.get("TENSORBOARD_LOGGING_DIR") \
        or os.path.join(args.output_dir, "runs")
    return os.path.join(os.path.expanduser(root), "lth_fast")


def _schedulers(lr_scheduler) -> list:
    """The torch scheduler (inside Accelerate's AcceleratedScheduler), as a list."""
    if lr_scheduler is None:
        return []
    return [getattr(lr_scheduler, "scheduler", lr_scheduler)]


def _write_state(path: str, state: dict) -> None:
    """IMPLevels' state as one safetensors file: its two byte blobs as uint8 tensors, the rest
    as JSON metadata."""
    import torch

    tensors = {k: torch.frombuffer(bytearray(state[k]), dtype=torch.uint8)
               for k in ("ticket", "dense") if state.get(k) is not None}
    meta = {"format": "lth_fast.imp_levels", "level": str(state["level"]),
            "best": json.dumps(state["best"]), "schedules": json.dumps(state["schedules"])}
    atomic.save_tensors(path, tensors, meta, checksum=True)


def _read_state(path: str) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "lth_fast.imp_levels":
                raise ValueError("its metadata names no lth_fast IMP state")
            state = {"level": int(meta["level"]), "best": json.loads(meta.get("best", "null")),
                     "schedules": json.loads(meta["schedules"])}
            blobs = {k: f.get_tensor(k) for k in f.keys()}
            atomic.check_sha256(blobs, meta, "the file")
            for k in ("ticket", "dense"):
                state[k] = blobs[k].numpy().tobytes() if k in blobs else None
    except Exception as e:  # safetensors raises its own type for a damaged file
        raise ValueError(f"LotteryTicket: {path} is not a readable lth_fast IMP state file "
                         f"({e}): resume from another checkpoint") from None
    return state
