"""One epoch of `zoo.fit`: the batch loop (forward in the run's training form, the model's loss, backward,
step) with its metrics, then validation; the epoch's row of the history is what they found.

Steps do not wait for the device: images arrive as uint8 and are made float on it (`on_device`), and the loss
is summed there and read every `LOSS_READ_EVERY` steps and at the end of the epoch. A loss that is not finite
stops the run at the next read (the steps since the last read have run; the last checkpoint is untouched)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo._runtime.data import Skipped
from zoo._runtime.progress import progress as bar
from zoo._runtime.transforms import of_model, on_device
from zoo.errors import ZooError
from zoo.training.evaluation import check_unreadable, evaluate_batches, head_metrics, to_device, unpack
from zoo.training.fast import step_outputs_and_loss

if TYPE_CHECKING:
    from zoo._core.model import ZooModel
    from zoo._runtime.processes import Group
    from zoo.training.loaders import Loaders
    from zoo.training.optim import Optimisation
    from zoo.training.state import TrainingState

LOSS_READ_EVERY = 50  # steps between reads of the summed loss (each read waits for the device)


@dataclass
class EpochTotals:
    loss_sum: float = 0.0
    images: int = 0
    skipped: Any = 0  # a `Skipped` count naming the unreadable files
    seconds: float = 0.0
    metric: Any = None
    seen: list[tuple[Any, Any]] = field(default_factory=list)  # several processes: what the metric is to see


def train_one_epoch(model: ZooModel, net: Any, form: Any, loaders: Loaders, optimisation: Optimisation,
                    state: TrainingState, device: Any, group: Group | None, epoch: int, epochs: int,
                    show: bool | None, where: Callable[[], str]) -> EpochTotals:
    """The batch loop; ``where`` says what a stopped run leaves, for a loss that is not finite."""
    import torch

    totals = EpochTotals(metric=None if model.takes_images else model.metric())
    optimizer, started = optimisation.optimizer, time.perf_counter()
    preprocessing, loss_sum = of_model(model), torch.zeros((), device=device)
    least = 2 if group is None and _trains_batchnorm(model) else 1  # a batch of one cannot train BatchNorm
    for steps, batch in enumerate(bar(loaders.train, len(loaders.train), f"epoch {epoch}/{epochs}", show), 1):
        inputs, targets, missed = unpack(batch)
        totals.skipped += missed
        if len(inputs) < least:  # unreadable files left too few images to train on: the next batch goes on
            continue
        inputs = form.inputs(on_device(inputs, preprocessing, device, form.channels_last))
        targets = to_device(targets, device)
        optimisation.schedule.apply(optimizer, state.step)
        outputs, loss = step_outputs_and_loss(model, net, form, inputs, targets, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state.step += 1
        loss_sum += loss.detach().float() * len(inputs)  # read every `LOSS_READ_EVERY` steps, not each step
        totals.images += len(inputs)
        if steps % LOSS_READ_EVERY == 0:
            _check_finite(float(loss_sum), epoch, where)
        if totals.metric is not None and group is None:
            totals.metric.update(_detach(outputs), targets)
        elif totals.metric is not None:  # rank 0 tallies every process's at the end of the epoch
            totals.seen.append(to_device((_detach(outputs), targets), "cpu"))
    totals.loss_sum = float(loss_sum)  # the epoch's one wait for the device, but every LOSS_READ_EVERY steps
    _check_finite(totals.loss_sum, epoch, where)
    totals.seconds = time.perf_counter() - started
    return totals


def _trains_batchnorm(model: ZooModel) -> bool:
    from torch import nn

    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training
               for module in model.modules())


def _check_finite(loss_sum: float, epoch: int, where: Callable[[], str]) -> None:
    """A sum of losses is finite only if every loss in it was: a step whose loss was not stops the run."""
    if not math.isfinite(loss_sum):
        raise ZooError(f"epoch {epoch}: the training loss is {loss_sum}; stopped ({where()})")


def epoch_row(epoch: int, totals: EpochTotals, loaders: Loaders, model: ZooModel, optimizer: Any,
              group: Group | None, device: Any) -> dict[str, Any]:
    """The epoch's totals over every process, its training metrics, then validation: one row of the history."""
    loss_sum, images, skipped = totals.loss_sum, totals.images, totals.skipped
    if group is not None:
        names = [name for share in group.everyone(list(getattr(skipped, "names", ()))) for name in share]
        loss_sum, images, skipped = group.total(loss_sum, images, skipped)
        images, skipped = int(images), Skipped(int(skipped), names)  # every process's unreadable files named
    if loaders.sizes[0] is not None:
        check_unreadable(skipped, loaders.sizes[0], loaders.source)
    if images == 0:
        raise ZooError(f"epoch {epoch}: no training image could be read")
    train_metrics = _train_metrics(totals.metric, totals.seen, group)
    found = validate(model, loaders, device, group)
    row: dict[str, Any] = {"epoch": epoch, **_rates(optimizer), "train/loss": loss_sum / images}
    row.update({f"train/{k}": v for k, v in train_metrics.items()})
    if found["loss"] is not None:
        row["val/loss"] = found["loss"]
    row.update({f"val/{k}": v for k, v in found["metrics"].items()})
    row.update({"seconds": round(totals.seconds, 3), "images_per_s": round(images / totals.seconds, 2),
                "skipped": int(skipped), "device": str(device)})
    if getattr(skipped, "names", ()):  # the files that could not be read (`Skipped`)
        row["unreadable"] = list(skipped.names)
    return row


def validate(model: ZooModel, loaders: Loaders, device: Any, group: Group | None) -> dict[str, Any]:
    """The evaluation run on the validation loader, every process's BatchNorm statistics those of rank 0's
    model (the one saved)."""
    if group is not None:
        group.same_buffers(model)
    return evaluate_batches(model, loaders.val, device, group=loaders.val_group)


def _train_metrics(metric: Any, seen: list[tuple[Any, Any]], group: Group | None) -> dict[str, float]:
    """The epoch's training metrics, by head: of this process's batches, which ``metric`` has seen, or with
    several processes of every process's, which rank 0 gathers from each one's ``seen`` (outputs and targets,
    kept on the CPU until the epoch ends: a classifier's is a float per class per image)."""
    if metric is None:
        return {}
    if group is None:
        return head_metrics(metric)
    for outputs, targets in group.collect(seen, len(seen)):
        metric.update(outputs, targets)
    return group.decided(lambda: head_metrics(metric))


def _detach(outputs: Any) -> Any:
    if isinstance(outputs, dict):
        return {k: _detach(v) for k, v in outputs.items()}
    return outputs.detach()


def _rates(optimizer: Any) -> dict[str, float]:
    """The epoch's last learning rates: ``lr`` the heads', ``lr/backbone`` the backbone's fastest stage's where
    it differs (``backbone_lr``, ``layer_decay``); a model without trainable heads names its first group's."""
    groups = optimizer.param_groups
    heads = next((g for g in groups if g.get("name") == "heads"), groups[0])
    fastest = max((g for g in groups if g.get("name") != "heads"), key=_initial, default=heads)
    if math.isclose(_initial(fastest), _initial(heads)):
        return {"lr": heads["lr"]}
    return {"lr": heads["lr"], "lr/backbone": fastest["lr"]}


def _initial(group: dict[str, Any]) -> float:
    """A parameter group's rate before the schedule scales it."""
    return group.get("initial_lr", group["lr"])
