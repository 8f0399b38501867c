"""Process-group setup for DDP: `torchrun --nproc-per-node K -m robustscale train ...`, or a sweep's
multi-task Slurm job.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; in a Slurm job the sweep's
executor exports the same variables from SLURM_* before training (`sweep.executors`), so the trainer
sees one interface. Without them the run is a single process. NCCL on CUDA (device cuda:LOCAL_RANK),
gloo on CPU.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def process_rank() -> int:
    """This process's rank as torchrun (or the sweep's Slurm executor) set it; 0 outside a DDP job."""
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    """Rank 0, the process that writes and prints (true outside a DDP job); no process group needed."""
    return process_rank() == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group the environment describes (if any) and return this process's place in it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(process_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return info


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(info: DistInfo, obj):
    """Rank 0's value of a small picklable object, on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(info: DistInfo, tensor: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over all ranks (a collective: every rank must call it)."""
    if not info.enabled:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total / info.world_size


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
