"""torch.distributed context of the CLI and of :func:`~captum_certified.certify.certify_dataset`.

Examples are sharded by rank (``index % world_size == rank``); a process group is joined from
the environment ``torchrun`` sets (gloo), or an existing one is used as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

#: Per-example generator seeds are ``seed * EXAMPLE_SEED_STRIDE + index``: the noise of an
#: example does not depend on which process certifies it, nor on resumption.
EXAMPLE_SEED_STRIDE = 1_000_003


def example_generator(seed: int, index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of example ``index`` of a run seeded with ``seed`` (on ``device``)."""
    return torch.Generator(device=device).manual_seed(seed * EXAMPLE_SEED_STRIDE + index)


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    initialized_here: bool = False

    @classmethod
    def from_env(cls) -> DistributedContext:
        """An initialized process group as it is, else the one ``torchrun`` describes in the
        environment (joined with gloo), else a single process."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), False)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        dist.init_process_group(backend="gloo")
        return cls(dist.get_rank(), dist.get_world_size(), True)

    def shard(self, indices: list[int]) -> list[int]:
        """This rank's share of ``indices`` (by example index, so resumption keeps shards)."""
        return [i for i in indices if i % self.world_size == self.rank]

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the answer)."""
        if self.world_size <= 1:
            return flag
        value = torch.tensor([int(flag)])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()
