"""`zoo.fit`: fine-tune a model on a data set, keep the best epoch and the last, and save both with
everything that decides what the model computes (labels, image size, eval transform, settings, metrics).

The loop is the seeds' loop (forward, the model's loss, backward, step; then validation) with what they
leave to the user done once: data and transform from the model, parameter groups per stage, warm-up and
schedule, gradual unfreezing with the optimizer kept right, progress, history and atomic files. With an output, a
checkpoint after every epoch lets ``resume=True`` continue a stopped run (`zoo.training.checkpoint`); a loss
that is not finite stops the run with the last good checkpoint kept.
"""
from __future__ import annotations

import math
import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._artifact import check_output, load, save
from zoo._builder import build, freeze as apply_freeze
from zoo._device import announce, choose_device
from zoo._fast import TrainingForm
from zoo._modelfile import model_file
from zoo.errors import ZooError, ZooNotice
from zoo.training.checkpoint import (Checkpoints, StoppedTraining, checkpoint_path, data_fingerprint, identity,
                                     random_states, restore_random_states)
from zoo.training.data import load_data, loader
from zoo.training.distributed import Group, join
from zoo.training.feature_cache import DEFAULT_LIMIT_GB, use_feature_cache
from zoo.training.evaluation import check_unreadable, head_metrics, run, to_device, unpack
from zoo.training.fast import choose_form, restore_form, step_outputs_and_loss
from zoo.training.history import history_paths, write_history
from zoo.training.optim import Schedule, add_unfrozen, make_optimizer, param_groups, parse_unfreeze
from zoo.training import DEFAULT_EPOCHS
from zoo.training.progress import progress as bar
from zoo.training.transfer import carry_heads
from zoo.training.transforms import of_model, spatial_targets

if TYPE_CHECKING:
    from zoo._model import ZooModel
    from zoo._registry import Registry

DEFAULT_LR = {"sgd": 0.01, "adamw": 0.001}


@dataclass
class Settings:
    """What a run was asked to do; saved in the model file under ``training``."""

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 32
    img_size: int | None = None
    lr: float | None = None
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup: int = 0  # epochs of linear warm-up
    backbone_lr: float = 1.0  # backbone stages learn at lr * backbone_lr
    layer_decay: float | None = None
    unfreeze: str | None = None  # "3:layer4,6:layer3"
    augment: bool = True
    val_split: float | None = None
    seed: int = 0
    workers: int = 0
    feature_cache_views: int = 0  # augmented views of each training image kept in the feature cache
    fast: bool = False  # channels-last, bf16 autocast where native, compiled where it pays (zoo.training.fast)
    keep_heads: bool = False  # keep heads whose weights learned other labels than the data's (zoo.training.transfer)

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ZooError(f"epochs ({self.epochs}) and batch size ({self.batch_size}) must be 1 or more")
        if self.warmup < 0 or (self.warmup and self.warmup >= self.epochs):
            raise ZooError(f"--warmup {self.warmup} must be fewer epochs than --epochs {self.epochs}")
        if self.feature_cache_views < 0:
            raise ZooError(f"--feature-cache-views must be 0 or more, not {self.feature_cache_views}")
        if self.optimizer not in DEFAULT_LR:
            raise ZooError(f"unknown optimizer {self.optimizer!r}; choose {', '.join(DEFAULT_LR)}")


@dataclass
class FitResult:
    model: Any
    history: list[dict[str, Any]]
    best_epoch: int
    metrics: dict[str, float]
    files: dict[str, str] = field(default_factory=dict)
    feature_cache: dict[str, Any] | None = None  # the cache file, its size in bytes, whether this run built it
    form: dict[str, Any] | None = None  # with fast=True: the training form chosen and what each candidate measured
    device: str = "cpu"  # where it trained (zoo._device.choose_device)

    def as_dict(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "metrics": self.metrics, "history": self.history, "files": self.files,
                "feature_cache": self.feature_cache, "form": self.form, "device": self.device}


def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _model(model: Any, freeze: str | None, weights: Any, registry: Registry | None) -> ZooModel:
    """A built model as it is, a saved file with its own weights, or a spec built with ``weights``."""
    from zoo._model import ZooModel

    if not isinstance(model, ZooModel):
        text = os.fspath(model)
        path = model_file(text, "train")
        if path is not None:
            if weights is not None:
                raise ZooError(f"{text} is a model file and carries its own weights; drop --weights")
            model = load(path, registry=registry)
        else:
            return build(text, freeze=freeze, weights=weights, registry=registry)
    return model if freeze is None else apply_freeze(model, freeze, registry)


def _score(row: dict[str, Any], model: ZooModel) -> float:
    """Higher is better: val mAP for detection (no loss in eval mode), else minus the val loss."""
    if model.takes_images:
        return next((v for k, v in row.items() if k.endswith("/map") and k.startswith("val/")), 0.0)
    return -row["val/loss"]


def _outputs(output: str | os.PathLike[str] | None, force: bool, resume: bool) -> dict[str, Path]:
    if output is None:
        if resume:
            raise ZooError("--resume needs the output (-o) of the run to continue")
        return {}
    best = check_output(output, force)
    last = best.with_name(best.stem + "-last.safetensors")
    check_output(last, force)
    for path in history_paths(best).values():
        if path.exists() and not force:
            raise ZooError(f"{path} exists; use --force (force=True) to replace it")
    checkpoint = checkpoint_path(best)
    if checkpoint.exists() and not (force or resume):
        raise ZooError(f"{checkpoint} is left by a stopped run; continue it with --resume, or start over with --force")
    return {"best": best, "last": last, "checkpoint": checkpoint}


def fit(
    model: ZooModel | str | os.PathLike[str],
    data: Any,
    val: Any = None,
    *,
    freeze: str | None = None,
    weights: Any = None,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    device: str | None = None,
    progress: bool | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    resume: bool = False,
    feature_cache: bool = True,
    feature_cache_limit_gb: float | None = None,
    registry: Registry | None = None,
    **settings: Any,
) -> FitResult:
    """Fine-tune ``model`` (a built model, a spec or a .safetensors file) on ``data``.

    ``registry``: where spec names, freeze policies and head target readers are looked up (default: the
    packaged registry with $ZOO_REGISTRY).
    ``data``: a folder of class folders, a CSV/JSON-lines table, a COCO JSON file, or your own DataLoader
    of (images, targets); ``val`` the same (default: DATA/val/ or ``val_split``). Under torchrun zoo shares its own
    loaders out; a DataLoader of yours runs whole on every process (give it a DistributedSampler). ``settings``
    are the fields of `Settings` (epochs, batch_size, img_size, lr, optimizer, schedule, warmup, backbone_lr,
    layer_decay, unfreeze, augment, val_split, seed, workers, feature_cache_views, fast, keep_heads; epochs: 5 by
    default, as ``zoo train``). A head whose weights learned other labels than the data's starts fresh unless
    ``keep_heads`` (`zoo.training.transfer`). With ``fast``, training
    steps run in the fastest form measured on the first batch (`zoo.training.fast`: channels-last, bf16 autocast
    where the hardware has it, compiled where a long run repays it); weights stay float32 and validation runs in
    fp32. The model ends with its best epoch's weights; with
    ``output``, the best and the last epoch are saved (``NAME.safetensors``, ``NAME-last.safetensors``) with
    the history (``NAME.history.csv``/``.json``, ``NAME.curves.png``); ``NAME.checkpoint.pt`` holds the run's
    state after each epoch until it ends, and ``resume=True`` continues from it. With ``feature_cache`` (the
    default), stages frozen before the first trainable one run once per image (`zoo.training.feature_cache`),
    on the eval transform, and on ``feature_cache_views`` augmented views per training image if set.

    >>> zoo.fit("resnet18+cls2", "hymenoptera_data", weights="imagenet", freeze="layer4", epochs=5)  # doctest: +SKIP
    """
    unknown = sorted(set(settings) - set(Settings.__dataclass_fields__))
    if unknown:
        raise ZooError(f"zoo.fit has no setting {unknown[0]!r}; settings: {', '.join(Settings.__dataclass_fields__)}")
    config = Settings(**settings)
    config.check()
    config.lr = config.lr or DEFAULT_LR[config.optimizer]
    files = _outputs(output, force, resume)
    device = choose_device(device)
    group = join(device)
    writes = group is None or group.writes
    _seed(config.seed)
    from_spec = isinstance(model, (str, os.PathLike)) and model_file(os.fspath(model), "train") is None
    model = _model(model, freeze, weights, registry)
    if config.img_size is not None:
        model.set_image_size(config.img_size)
    plan = parse_unfreeze(config.unfreeze, model.backbone.stage_names)
    if plan and plan[-1][0] > config.epochs:
        raise ZooError(f"--unfreeze {config.unfreeze}: epoch {plan[-1][0]} is after the last epoch {config.epochs}")
    if plan and group is not None:
        raise ZooError("--unfreeze is not supported with several processes (torchrun): train the stages in two runs")
    preprocessing = of_model(model)
    whole = model.takes_images
    if isinstance(data, (str, os.PathLike)):
        train_samples, val_samples = load_data(model, data, val, config.val_split, config.seed)
        carry_heads(model, train_samples.labels, config.keep_heads)
        model.labels.update(train_samples.labels)
        augment = config.augment and not spatial_targets(model)
        train_loader = loader(train_samples, preprocessing.train_transform(augment), config.batch_size, shuffle=True,
                              whole=whole, workers=config.workers, seed=config.seed)
        val_loader = loader(val_samples, preprocessing.eval_transform(), config.batch_size, shuffle=False,
                            whole=whole, workers=config.workers)
        sizes = (len(train_samples), len(val_samples))
        source = os.fspath(data)
        data_key = data_fingerprint([train_samples, val_samples])
        if group is not None:
            group.check_samples(len(train_samples))
            train_loader = group.shard(train_loader, config.seed)
            val_loader = group.own_batches(val_loader)
        val_group = group
    else:
        if val is None:
            raise ZooError("with your own DataLoader, give a validation DataLoader too (val=...)")
        train_loader, val_loader, sizes, source = data, val, (None, None), "DataLoader"
        data_key = "DataLoader"
        val_group = None  # your own loader: every process validates on all of it
    if from_spec and model.weights_report is None and not resume:
        warnings.warn(f"{model.spec} trains from random weights; pass --weights (imagenet, a tag or a file) to "
                      "start from pretrained ones", ZooNotice, stacklevel=2)
    if writes:
        announce(device, "training")
    model.to(device)
    run_on = device
    cache, cache_report = None, None
    if feature_cache and sizes[0] is not None and not plan:
        found = use_feature_cache(model, train_samples, val_samples, preprocessing, data_key, config.batch_size,
                                  config.seed, run_on, feature_cache_limit_gb or DEFAULT_LIMIT_GB,
                                  views=config.feature_cache_views if augment else 0, group=group)
        if found is not None:
            cache, train_loader, val_loader = found
            if group is not None:
                train_loader, val_loader = group.shard(train_loader, config.seed), group.own_batches(val_loader)
            cache_report = {"file": str(cache.path), "bytes": cache.size_bytes, "built": cache.built,
                            "views": len(train_loader.dataset.views) if config.feature_cache_views and augment else 0}
    groups = dict(backbone_lr=config.backbone_lr, layer_decay=config.layer_decay)
    optimizer = make_optimizer(config.optimizer, param_groups(model, config.lr, weight_decay=config.weight_decay,
                                                              **groups), momentum=config.momentum)
    steps = len(train_loader)
    schedule = Schedule(config.schedule, config.epochs * steps, config.warmup * steps, max(1, config.epochs // 3) * steps)
    history: list[dict[str, Any]] = []
    best_state, best_score, best_epoch, step, first = None, float("-inf"), 0, 0, 1
    generator = getattr(train_loader, "generator", None)
    checkpoints = None
    if files:  # every process reads it to resume; rank 0 alone writes it
        checkpoints = Checkpoints(files["checkpoint"], identity(model.spec, model.freeze_policy, data_key, asdict(config)),
                                  writes)

    def unfreeze_at(epoch: int) -> None:
        for at, stage in plan:
            if at == epoch:
                apply_freeze(model, stage if stage.startswith(("last:", "none", "all")) else f"before:{stage}", registry)
                add_unfrozen(optimizer, model, config.lr, weight_decay=config.weight_decay, **groups)

    recorded_form = None
    if resume and checkpoints is not None:
        state = checkpoints.load()
        recorded_form = state.get("form")
        for epoch in range(1, state["epoch"] + 1):
            unfreeze_at(epoch)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_random_states(state["random"], generator)
        history, best_state, best_score, best_epoch = state["history"], state["best_state"], *state["best"]
        step, first = state["step"], state["epoch"] + 1
    if cache is not None:
        cache.bypass()
    form, forward = TrainingForm(), model
    if config.fast and recorded_form is not None:
        form, forward = restore_form(model, recorded_form)
    elif config.fast:
        form, forward = _choose_form(model, train_loader, run_on, (config.epochs - first + 1) * steps * config.batch_size,
                                     group, generator)
    form_record = form.as_dict() if config.fast else None  # what the checkpoint, the file and the result keep
    net = group.wrap(model, run_on) if group is not None else forward
    try:
        for epoch in range(first, config.epochs + 1):
            unfreeze_at(epoch)
            model.train()
            if group is not None:
                train_loader.sampler.set_epoch(epoch)
            if cache is not None:
                train_loader.dataset.set_epoch(epoch)
            metric = None if whole else model.metric()
            seen: list[tuple[Any, Any]] = []  # with several processes: the outputs and targets the metric is to see
            loss_sum, images, skipped, started = 0.0, 0, 0, time.perf_counter()
            for batch in bar(train_loader, steps, f"epoch {epoch}/{config.epochs}", progress if writes else False):
                inputs, targets, missed = unpack(batch)
                skipped += missed
                if len(inputs) == 0:
                    continue
                inputs, targets = form.inputs(to_device(inputs, run_on)), to_device(targets, run_on)
                schedule.apply(optimizer, step)
                outputs, loss = step_outputs_and_loss(model, net, form, inputs, targets, run_on)
                value = float(loss.detach())
                if not math.isfinite(value):
                    where = checkpoints.where() if checkpoints else "nothing was written"
                    raise ZooError(f"epoch {epoch}: the training loss is {value}; stopped ({where})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                loss_sum += value * len(inputs)
                images += len(inputs)
                if metric is not None and group is None:
                    metric.update(_detach(outputs), targets)
                elif metric is not None:  # rank 0 tallies every process's at the end of the epoch
                    seen.append(to_device((_detach(outputs), targets), "cpu"))
            seconds = time.perf_counter() - started
            if group is not None:
                loss_sum, images, skipped = group.total(loss_sum, images, skipped)
                images, skipped = int(images), int(skipped)
            if sizes[0] is not None:
                check_unreadable(skipped, sizes[0], source)
            if images == 0:
                raise ZooError(f"epoch {epoch}: no training image could be read")
            train_metrics = _train_metrics(metric, seen, group)
            if group is not None:
                group.same_buffers(model)
            found = run(model, val_loader, run_on, group=val_group)
            row: dict[str, Any] = {"epoch": epoch, **_rates(optimizer), "train/loss": loss_sum / images}
            row.update({f"train/{k}": v for k, v in train_metrics.items()})
            if found["loss"] is not None:
                row["val/loss"] = found["loss"]
            row.update({f"val/{k}": v for k, v in found["metrics"].items()})
            row.update({"seconds": round(seconds, 3), "images_per_s": round(images / seconds, 2),
                        "skipped": int(skipped), "device": str(device)})
            if getattr(skipped, "names", ()):  # the files this process could not read (`Skipped`)
                row["unreadable"] = list(skipped.names)
            history.append(row)
            score = _score(row, model)
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            if checkpoints is not None:
                checkpoints.save(epoch, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                                         "random": random_states(generator), "history": history,
                                         "best_state": best_state, "best": [best_score, best_epoch],
                                         "form": form_record})
            if on_epoch is not None and writes:
                on_epoch(row)
    except KeyboardInterrupt:
        raise StoppedTraining(checkpoints.where() if checkpoints else "nothing was written") from None
    finally:
        if cache is not None:
            cache.restore()
        TrainingForm().prepare(model)  # the usual memory layout again
    best_row = history[best_epoch - 1]
    metrics = {k[4:]: v for k, v in best_row.items() if k.startswith("val/")}
    model.record["preprocessing"] = preprocessing.as_dict()
    model.record["training"] = {**asdict(config), "data": source, "train_images": sizes[0], "val_images": sizes[1],
                                "epochs_run": len(history), "best_epoch": best_epoch, "device": str(device)}
    if form_record is not None:
        model.record["training"]["form"] = form_record
    if group is not None:
        model.record["training"]["processes"] = {"count": group.size, "backend": group.backend}
    written: dict[str, str] = {}
    if group is not None:
        group.leave()
        files = files if writes else {}
    if files:
        model.record["metrics"] = {k[4:]: v for k, v in history[-1].items() if k.startswith("val/")}
        model.record["training"]["epoch"] = len(history)
        written["last"] = str(save(model, files["last"], force=force, registry=registry))
        written.update(write_history(history, files["best"]))
    model.load_state_dict(best_state)
    model.record["metrics"] = metrics
    model.record["training"]["epoch"] = best_epoch
    if files:
        written["best"] = str(save(model, files["best"], force=force, registry=registry))
        checkpoints.remove()
    return FitResult(model, history, best_epoch, metrics, written, cache_report, form_record, str(device))


def _choose_form(model: ZooModel, train_loader: Any, device: Any, images_planned: int, group: Any,
                 generator: Any) -> tuple[TrainingForm, Any]:
    """`zoo.training.fast.choose_form` on the run's first batch, drawn without moving any random state, so a
    fast run sees the images in the order a plain one does."""
    states = random_states(generator)
    batch = next(iter(train_loader))
    restore_random_states(states, generator)
    return choose_form(model, batch, device, images_planned, group)


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
