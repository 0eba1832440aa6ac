"""Training on several processes: under ``torchrun`` (``WORLD_SIZE`` > 1) `zoo.fit` joins the process group
(gloo on CPU, nccl on GPUs), wraps the model in DistributedDataParallel, gives each process its share of the
training images through a DistributedSampler, sums the training loss across processes, and lets only rank 0
write files and print. Every process validates on the whole validation set, so all agree on the best epoch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError

if TYPE_CHECKING:
    import torch


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class Group:
    """This process's place in the group."""

    rank: int
    size: int
    owns_group: bool  # joined by zoo.fit, so zoo.fit leaves it

    @property
    def writes(self) -> bool:
        return self.rank == 0

    def check_samples(self, count: int) -> None:
        if count < self.size:
            raise ZooError(f"{self.size} processes but only {count} training images; use at most {count} processes")

    def shard(self, loader: Any, seed: int) -> Any:
        """The training loader over this process's share of the images (reshuffled each epoch by `set_epoch`)."""
        from torch.utils.data import DataLoader
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(loader.dataset, num_replicas=self.size, rank=self.rank, shuffle=True, seed=seed,
                                     drop_last=len(loader.dataset) >= 2 * self.size)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, collate_fn=loader.collate_fn,
                          num_workers=loader.num_workers, drop_last=loader.drop_last and
                          len(loader.dataset) // self.size > loader.batch_size)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        unused = any(weight == 0 for weight in getattr(model, "loss_weights", {}).values())  # heads left untrained
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)

    def total(self, *values: float) -> list[float]:
        """Each value summed over every process."""
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor)
        return tensor.tolist()

    def leave(self) -> None:
        import torch.distributed as dist

        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def join(device: str | None) -> Group | None:
    """This process's group under torchrun (joining it on first use), else None."""
    if not launched():
        return None
    import torch
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        gpu = (device or "").startswith("cuda") and torch.cuda.is_available()
        if gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if gpu else "gloo")
    return Group(dist.get_rank(), dist.get_world_size(), owns)
