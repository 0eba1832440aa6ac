"""Several processes under ``torchrun`` (``WORLD_SIZE`` > 1): training, evaluation and prediction.

`zoo.fit` joins the process group (gloo on CPU, nccl on GPUs), wraps the model in DistributedDataParallel and
gives each process its share of the training images through a DistributedSampler; the training loss is summed
across processes and the training metrics are computed by rank 0 over the outputs every process saw.

`zoo.evaluate` (``zoo eval``) and the validation inside `zoo.fit` shard by batches: the images are batched as
one process batches them, and process r runs batches r, r + N, r + 2N, ... (`Group.own_batches`). Rank 0
gathers every batch's outputs and targets in the original order (`Group.collect`) and feeds them to the same
metric code one process runs, so the metrics are exactly those of one process: each batch holds the images it
holds for one process (a batch of other images can change an output's last bits). Every process gets rank 0's
result (`Group.decided`), so all agree on the best epoch. `zoo.predict` (``zoo predict``) shards its batches
the same way, and every process gets every image's answer in order (`Group.everyone`).

Only rank 0 prints and writes files, except ``zoo predict --out``, where each process draws its own images,
and the feature cache, which rank 0 builds while the others wait and all then read. With ``--fast`` the
processes agree on one training form from their summed rates.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from zoo.errors import EveryProcessError, ZooError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def launched() -> bool:
    """Whether torchrun started this process (one of several, or alone: ``--nproc-per-node gpu`` on one GPU)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "TORCHELASTIC_RUN_ID" in os.environ


def is_rank_zero() -> bool:
    """Whether this process prints results: the only one, or rank 0 of those torchrun started."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Group:
    """This process's place in the group."""

    rank: int
    size: int
    owns_group: bool  # joined by the zoo function (fit, evaluate, predict) that leaves it, not by its caller
    backend: str = "gloo"  # nccl between GPUs

    @property
    def is_rank_zero(self) -> bool:
        return self.rank == 0

    def check_samples(self, count: int, what: str = "training images") -> None:
        """Every process needs an image: more processes than images is one line (printed by rank 0 alone)."""
        if count < self.size:
            raise EveryProcessError(f"{self.size} processes but only {count} {what}; use at most {count} processes")

    def mine(self, items: Sequence[T]) -> Sequence[T]:
        """This process's share of ``items``: those at rank, rank + size, rank + 2 size, ..."""
        return items[self.rank::self.size]

    def own_batches(self, loader: Any) -> Any:
        """An evaluation loader over this process's batches of ``loader`` (which must not shuffle): batches
        rank, rank + size, ..., each holding exactly the images it holds for one process, so that every output
        is the one a single process computes."""
        from torch.utils.data import DataLoader

        return DataLoader(loader.dataset, batch_sampler=list(self.mine(list(loader.batch_sampler))),
                          collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                          persistent_workers=loader.num_workers > 0, pin_memory=loader.pin_memory)

    def shard(self, loader: Any, seed: int) -> Any:
        """The training loader over this process's share of the images (reshuffled each epoch by `set_epoch`)."""
        from torch.utils.data import DataLoader
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(loader.dataset, num_replicas=self.size, rank=self.rank, shuffle=True, seed=seed,
                                     drop_last=len(loader.dataset) >= 2 * self.size)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, collate_fn=loader.collate_fn,
                          num_workers=loader.num_workers, persistent_workers=loader.num_workers > 0,
                          pin_memory=loader.pin_memory, drop_last=loader.drop_last and
                          len(loader.dataset) // self.size > loader.batch_size)

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        unused = any(weight == 0 for weight in getattr(model, "loss_weights", {}).values())  # heads left untrained
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)

    def total(self, *values: float) -> list[float]:
        """Each value summed over every process."""
        return self._reduce(values, "SUM")

    def most(self, value: int) -> int:
        """The largest of every process's ``value``."""
        return int(self._reduce([value], "MAX")[0])

    def _reduce(self, values: Sequence[float], operation: str) -> list[float]:
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            tensor = tensor.cuda()
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, operation))
        return tensor.tolist()

    def collect(self, records: Iterable[T], count: int) -> Iterator[T]:
        """Every process's ``records`` on rank 0, in rounds: each process's first record in rank order, then
        each one's second, and so on; nothing on the other ranks. ``count`` is how many this process has.

        With batches shared out by `mine`, that is the original order. A round's records travel together
        (pickled: move tensors to the CPU first), so rank 0 holds one round at a time, never the whole set.
        Every process must iterate to the end, as each round is a collective call.
        """
        import torch.distributed as dist

        own = iter(records)
        for _ in range(self.most(count)):
            record = next(own, None)
            received: list[Any] | None = [None] * self.size if self.is_rank_zero else None
            dist.gather_object(record, received, dst=0)
            if received is not None:
                yield from (found for found in received if found is not None)

    def decided(self, decide: Callable[[], T]) -> T:
        """``decide()`` run by rank 0 alone, its answer given to every process. A `ZooError` it raises is
        raised by every process, as an `EveryProcessError`, so that none waits for an answer that never comes."""
        import torch.distributed as dist

        answer: list[Any] = [None]
        if self.is_rank_zero:
            try:
                answer = [(decide(), None)]
            except ZooError as exc:
                answer = [(None, str(exc))]
        dist.broadcast_object_list(answer, src=0)
        value, error = answer[0]
        if error is not None:
            raise EveryProcessError(error)
        return value

    def everyone(self, value: T) -> list[T]:
        """Every process's ``value``, by rank, on every process."""
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, value)
        return gathered

    def same_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm's running statistics) on every process: training updates them from each
        process's own batches, and the model evaluated must be the one rank 0 saves."""
        import torch
        import torch.distributed as dist

        with torch.no_grad():
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def leave(self) -> None:
        import torch.distributed as dist

        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def join_process_group(device: torch.device) -> Group | None:
    """This process's group under torchrun (joining it on first use: NCCL on its GPU, gloo on the CPU), else None."""
    if not launched():
        return None
    import torch
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        gpu = device.type == "cuda"
        if gpu:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if gpu else "gloo")
    return Group(dist.get_rank(), dist.get_world_size(), owns, str(dist.get_backend()))
