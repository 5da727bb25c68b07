"""torch.distributed context for ``torchrun``: examples are sharded by rank (gloo on CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed as dist


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    initialized_here: bool = False

    @classmethod
    def from_env(cls) -> DistributedContext:
        """Join the process group that ``torchrun`` describes in the environment, if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend="gloo")
            return cls(dist.get_rank(), dist.get_world_size(), True)
        return cls(dist.get_rank(), dist.get_world_size(), False)

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the answer)."""
        if self.world_size <= 1:
            return flag
        import torch

        value = torch.tensor([int(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()
