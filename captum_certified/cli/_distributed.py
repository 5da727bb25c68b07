"""torch.distributed context for ``torchrun``: examples are sharded by rank (gloo on CPU)."""

from captum_certified._utils.distributed import DistributedContext

__all__ = ["DistributedContext"]
