"""Process-group set-up from torchrun's environment, and the few collectives the trainer uses.

Without torchrun (no ``WORLD_SIZE`` in the environment) everything is a single process and the
collectives are no-ops. With it: NCCL on GPU, gloo on CPU; multi-node works the same way
(``torchrun --nnodes N --node_rank R --rdzv_endpoint HOST:PORT``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size``, ``local_rank`` on its node, device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str = "auto") -> DistInfo:
    """Initialise the process group when launched by torchrun; pick the device.

    Args:
        device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place); identity in a single process."""
    if torch_dist.is_initialized() and torch_dist.get_world_size() > 1:
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.SUM)
    return t


def any_rank(flags: tuple[bool, ...], device: torch.device | str) -> tuple[bool, ...]:
    """Each flag OR-ed over ranks, so every rank takes the same decision (stop, save) at the
    same step; one rank leaving the loop alone would leave the others waiting in a collective."""
    t = torch.tensor([float(f) for f in flags], device=device)
    return tuple(bool(v > 0) for v in all_reduce_sum(t).tolist())


def barrier() -> None:
    if torch_dist.is_initialized():
        torch_dist.barrier()


def shutdown() -> None:
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()
