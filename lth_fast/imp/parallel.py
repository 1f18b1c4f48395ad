"""IMP on several processes (torchrun): the layout of one run, and what changes with it.

Under torchrun (WORLD_SIZE > 1) the run joins the process group torchrun describes (gloo on
CPU, nccl on CUDA with one rank per GPU) and trains data-parallel: every rank takes its own
contiguous part of each global batch, so the global batch, data order and learning rates are
those of a one-process run. The model is replicated with DDP, or sharded with FSDP2
(`fully_shard`, on an explicit device mesh, so a CPU run stays on the CPU). Pruning ranks the
whole model across ranks (lth_fast.distributed); every rank evaluates the whole validation and
test sets, so all ranks hold the same metrics; rank 0 alone writes the run directory, and
state files hold unsharded tensors, so a run resumes at any world size."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from ..distributed import shard_of, unsharded
from ..ops.dtensors import is_dtensor, is_sharded, local
from ..pruning.state import model_tensors


def reports() -> bool:
    """Whether this process prints what a command reports: rank 0 under torchrun, or the one
    process without it (read from the environment, so it holds before the group is joined)."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Parallel:
    world: int = 1
    rank: int = 0
    mode: str = "single"  # single | ddp | fsdp
    mesh: Optional[object] = None

    @property
    def main(self) -> bool:
        """The rank that writes files and prints."""
        return self.rank == 0

    @classmethod
    def from_env(cls, fsdp: bool, device: str) -> "Parallel":
        """The layout torchrun's environment gives (one process without it)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            if fsdp:
                raise ValueError("--fsdp shards the model over the ranks torchrun starts; run "
                                 "it under torchrun --nproc-per-node N (N >= 2)")
            return cls()
        import torch.distributed as dist
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        mesh = None
        if fsdp:
            from torch.distributed.device_mesh import init_device_mesh
            mesh = init_device_mesh("cuda" if cuda else "cpu", (world,))
        return cls(world, dist.get_rank(), "fsdp" if fsdp else "ddp", mesh)

    def device(self, device: str) -> str:
        """cuda means this rank's GPU (LOCAL_RANK) under torchrun."""
        if self.mode != "single" and torch.device(device).type == "cuda":
            return f"cuda:{torch.cuda.current_device()}"
        return device

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ValueError(f"batch_size {batch_size} does not split over {self.world} ranks; "
                             f"give a multiple of {self.world}")

    def part(self, idx: Tensor) -> Tensor:
        """This rank's contiguous part of a global batch."""
        n = idx.numel() // self.world
        return idx[self.rank * n:(self.rank + 1) * n]

    # -- the model ---------------------------------------------------------------------------
    def wrap(self, model: nn.Module) -> nn.Module:
        """The model to train: itself, DDP around it, or itself sharded in place (FSDP2)."""
        if self.mode == "ddp":
            from torch.nn.parallel import DistributedDataParallel
            ids = [model_device(model)] if model_device(model).type == "cuda" else None
            return DistributedDataParallel(model, device_ids=ids)
        if self.mode == "fsdp":
            tied = sorted(tied_aliases(model))
            if tied:  # each layer is its own FSDP unit, and a shared parameter cannot be split
                raise ValueError(f"--fsdp shards each layer on its own; {type(model).__name__} "
                                 f"ties {tied} to another layer's weight: train it with DDP "
                                 f"(leave out --fsdp)")
            from torch.distributed.fsdp import fully_shard
            for m in model.modules():  # each layer with weights its own unit, then the root
                if m is not model and any(p is not None for p in m._parameters.values()):
                    fully_shard(m, mesh=self.mesh)
            fully_shard(model, mesh=self.mesh)
        return model

    @staticmethod
    def inner(model: nn.Module) -> nn.Module:
        """The module whose parameter names are the plain model's (DDP's .module)."""
        return getattr(model, "module", model)

    def state(self, model: nn.Module) -> Dict[str, Tensor]:
        """Every tensor of the state_dict once (a head tied to the embedding is saved and
        restored once, under its first name): lth_fast.pruning.level.model_tensors."""
        return model_tensors(self.inner(model))

    def full_state(self, model: nn.Module) -> Dict[str, Tensor]:
        """The state with unsharded tensors (every rank calls it under FSDP2)."""
        return {k: unsharded(local(v), v) if is_sharded(v) else local(v).detach()
                for k, v in self.state(model).items()}

    def load_full_state(self, model: nn.Module, full: Dict[str, Tensor]) -> None:
        """Loads unsharded tensors into the model (each rank its own shards)."""
        target = self.state(model)
        if set(full) != set(target):
            raise RuntimeError(f"missing keys {sorted(set(target) - set(full))}, unexpected "
                               f"keys {sorted(set(full) - set(target))}")
        with torch.no_grad():
            for k, v in target.items():
                part = shard_of(full[k], v) if is_dtensor(v) else full[k]
                if tuple(part.shape) != tuple(local(v).shape):
                    raise RuntimeError(f"size mismatch for {k}: the file holds "
                                       f"{list(full[k].shape)}, the model {list(v.shape)}")
                local(v).copy_(part)

    def barrier(self) -> None:
        if self.mode != "single":
            import torch.distributed as dist
            dist.barrier()

    def sum_ints(self, values):
        """Integer sums over the ranks (the alive counts of sharded masks)."""
        if self.mode != "fsdp":
            return list(values)
        from ..distributed import comm
        t = torch.tensor(list(values), dtype=torch.int64)
        return comm.all_reduce_sum(t.to(comm.device_for(None, t.device)), None).tolist()


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def tied_aliases(model: nn.Module) -> set:
    """The qualified names under which a parameter appears after its first (tied weights)."""
    seen, out = set(), set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            out.add(name)
        seen.add(id(p))
    return out
