"""`zoo.fit`: fine-tune a model on a data set, keep the best epoch and the last, and save both with
everything that decides what the model computes (labels, image size, eval transform, settings, metrics).

The loop is the seeds' loop (forward, the model's loss, backward, step; then validation) with what they
leave to the user done once: data and transform from the model, parameter groups per stage, warm-up and
schedule, gradual unfreezing with the optimizer kept right, progress, history and atomic files. With an output, a
checkpoint after every epoch lets ``resume=True`` continue a stopped run (`zoo.training.checkpoint`); a loss
that is not finite stops the run with the last good checkpoint kept.

`fit` reads as its pieces, each owning one thing: preparing the run (`_prepare`: settings, files, device,
process group, seed, model, unfreezing plan), the loaders (`zoo.training.loaders`), the optimisation
(`zoo.training.optim.Optimisation`), the training state (`zoo.training.state`: epoch, step, history, best; to
and from a checkpoint), one epoch and validation (`zoo.training.epoch`), keeping the best epoch
(`TrainingState.keep_if_best`) and finishing (`_finish`: records and files).
"""
from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._core.saving import Labels, check_output, resolve_labels, save
from zoo._modelfile.read import model_file
from zoo._runtime.compiled import TrainingForm
from zoo._runtime.devices import announce, choose_device
from zoo._runtime.opening import open_model
from zoo._runtime.processes import Group, join_process_group
from zoo._runtime.transforms import of_model
from zoo.errors import ZooError, ZooNotice
from zoo.training.checkpoint import Checkpoints, StoppedTraining, checkpoint_path, identity, random_states, \
    restore_random_states
from zoo.training.epoch import epoch_row, train_one_epoch
from zoo.training.fast import choose_form, restore_form
from zoo.training.history import history_paths, write_history
from zoo.training.loaders import Loaders, add_feature_cache, make_loaders
from zoo.training.optim import Optimisation, parse_unfreeze
from zoo.training.settings import DEFAULT_LR, Settings
from zoo.training.state import TrainingState

if TYPE_CHECKING:
    from zoo._core.model import ZooModel
    from zoo._registry.registry import Registry

__all__ = ["DEFAULT_LR", "FitResult", "Settings", "fit"]


@dataclass
class FitResult:
    model: Any
    history: list[dict[str, Any]]
    best_epoch: int
    metrics: dict[str, float]
    files: dict[str, str] = field(default_factory=dict)
    feature_cache: dict[str, Any] | None = None  # the cache file, its size in bytes, whether this run built it
    form: dict[str, Any] | None = None  # with fast=True: the training form chosen and what each candidate measured
    device: str = "cpu"  # where it trained (zoo._runtime.devices.choose_device)

    def as_dict(self) -> dict[str, Any]:
        return {"best_epoch": self.best_epoch, "metrics": self.metrics, "history": self.history, "files": self.files,
                "feature_cache": self.feature_cache, "form": self.form, "device": self.device}


@dataclass
class _Run:
    """What a run was asked and where it runs."""

    config: Settings
    files: dict[str, Path]
    device: Any
    group: Group | None
    model: ZooModel
    plan: list[tuple[int, str]]
    preprocessing: Any
    from_spec: bool
    registry: Registry | None
    force: bool

    @property
    def is_rank_zero(self) -> bool:
        """Whether this process writes files and prints: rank 0, or the only process."""
        return self.group is None or self.group.is_rank_zero


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
    labels: Labels | None = None,
    registry: Registry | None = None,
    **settings: Any,
) -> FitResult:
    """Fine-tune ``model`` (a built model, a spec or a .safetensors file) on ``data``.

    ``registry``: where spec names, freeze policies and head target readers are looked up (default: the
    packaged registry with $ZOO_REGISTRY).
    ``labels``: names for heads the data leaves unnamed (a table's class indices), as `zoo.save` takes them: a
    list for the first head that takes names, a dict by head, or a file (one name a line); they are saved.
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
    job = _prepare(model, freeze, weights, output, force, resume, device, registry, settings)
    model, config = job.model, job.config
    given = resolve_labels(labels, model, model.recipe) if labels is not None else None
    loaders = make_loaders(model, data, val, config, job.preprocessing, job.group, job.device, given)
    if job.from_spec and model.weights_report is None and not resume:
        warnings.warn(f"{model.spec} trains from random weights; pass --weights (imagenet, a tag or a file) to "
                      "start from pretrained ones", ZooNotice, stacklevel=2)
    if job.is_rank_zero:
        announce(job.device, "training")
    model.to(job.device)
    if feature_cache and not job.plan:
        add_feature_cache(loaders, model, job.preprocessing, config, job.device, feature_cache_limit_gb, job.group)
    optimisation = Optimisation(model, config, job.plan, len(loaders.train), registry)
    generator = getattr(loaders.train, "generator", None)
    checkpoints = None
    if job.files:  # every process reads it to resume; rank 0 alone writes it
        checkpoints = Checkpoints(job.files["checkpoint"],
                                  identity(model.spec, model.freeze_policy, loaders.data_key, asdict(config)),
                                  job.is_rank_zero)
    state, recorded_form = TrainingState(), None
    if resume and checkpoints is not None:
        saved = checkpoints.load()
        recorded_form = saved.get("form")
        for epoch in range(1, saved["epoch"] + 1):
            optimisation.unfreeze_at(epoch)
        state.restore(saved, model, optimisation.optimizer, generator)
    if loaders.cache is not None:
        loaders.cache.bypass()
    form, forward = _form(job, loaders, state, recorded_form, generator)
    form_record = form.as_dict() if config.fast else None  # what the checkpoint, the file and the result keep
    try:
        _epochs(job, loaders, optimisation, state, form, forward, checkpoints, generator, form_record,
                progress, on_epoch)
    except KeyboardInterrupt:
        raise StoppedTraining(checkpoints.where() if checkpoints else "nothing was written") from None
    finally:
        if loaders.cache is not None:
            loaders.cache.restore()
        TrainingForm().prepare(model)  # the usual memory layout again
    return _finish(job, loaders, state, form_record, checkpoints)


def _prepare(model: Any, freeze: str | None, weights: Any, output: Any, force: bool, resume: bool, device: Any,
             registry: Registry | None, settings: dict[str, Any]) -> _Run:
    """The settings checked, the files claimed, the device and process group, the seed, the model opened and
    sized, the unfreezing plan checked: everything refused before any work."""
    unknown = sorted(set(settings) - set(Settings.__dataclass_fields__))
    if unknown:
        raise ZooError(f"zoo.fit has no setting {unknown[0]!r}; settings: {', '.join(Settings.__dataclass_fields__)}")
    config = Settings(**settings)
    config.check()
    config.lr = config.lr or DEFAULT_LR[config.optimizer]
    files = _outputs(output, force, resume)
    device = choose_device(device)
    group = join_process_group(device)
    _seed(config.seed)
    from_spec = isinstance(model, (str, os.PathLike)) and model_file(os.fspath(model), "train") is None
    model = open_model(model, weights=weights, freeze=freeze, registry=registry, command="train",
                       warn_untrained=False)
    if config.img_size is not None:
        model.set_image_size(config.img_size)
    plan = parse_unfreeze(config.unfreeze, model.backbone.stage_names)
    if plan and plan[-1][0] > config.epochs:
        raise ZooError(f"--unfreeze {config.unfreeze}: epoch {plan[-1][0]} is after the last epoch {config.epochs}")
    if plan and group is not None:
        raise ZooError("--unfreeze is not supported with several processes (torchrun): train the stages in two runs")
    return _Run(config, files, device, group, model, plan, of_model(model), from_spec, registry, force)


def _form(job: _Run, loaders: Loaders, state: TrainingState, recorded: dict[str, Any] | None,
          generator: Any) -> tuple[TrainingForm, Any]:
    """The training form (with ``fast``: the one a resumed run recorded, else the fastest measured) and the
    module the steps run through (the process group's wrapper under torchrun)."""
    config, model = job.config, job.model
    form, forward = TrainingForm(), model
    if config.fast and recorded is not None:
        form, forward = restore_form(model, recorded)
    elif config.fast:
        planned = (config.epochs - state.first + 1) * len(loaders.train) * config.batch_size
        form, forward = _choose_form(model, loaders.train, job.device, planned, job.group, generator)
    return form, job.group.wrap(model, job.device) if job.group is not None else forward


def _epochs(job: _Run, loaders: Loaders, optimisation: Optimisation, state: TrainingState, form: TrainingForm,
            net: Any, checkpoints: Checkpoints | None, generator: Any, form_record: dict[str, Any] | None,
            progress: bool | None, on_epoch: Callable[[dict[str, Any]], None] | None) -> None:
    """The epochs still to run: unfreezing, one epoch, validation, the best kept, a checkpoint after each."""
    model, config, group = job.model, job.config, job.group
    where = (lambda: checkpoints.where()) if checkpoints else (lambda: "nothing was written")
    for epoch in range(state.first, config.epochs + 1):
        optimisation.unfreeze_at(epoch)
        model.train()
        if group is not None:
            loaders.train.sampler.set_epoch(epoch)
        if loaders.cache is not None:
            loaders.train.dataset.set_epoch(epoch)
        totals = train_one_epoch(model, net, form, loaders, optimisation, state, job.device, group, epoch,
                                 config.epochs, progress if job.is_rank_zero else False, where)
        row = epoch_row(epoch, totals, loaders, model, optimisation.optimizer, group, job.device)
        state.history.append(row)
        state.keep_if_best(row, model)
        if checkpoints is not None:
            checkpoints.save(epoch, state.to_checkpoint(model, optimisation.optimizer, generator, form_record))
        if on_epoch is not None and job.is_rank_zero:
            on_epoch(row)


def _finish(job: _Run, loaders: Loaders, state: TrainingState, form_record: dict[str, Any] | None,
            checkpoints: Checkpoints | None) -> FitResult:
    """What the model records of its run; the last epoch saved, then the best one loaded and saved."""
    model, group, files, history = job.model, job.group, job.files, state.history
    metrics = {k[4:]: v for k, v in history[state.best_epoch - 1].items() if k.startswith("val/")}
    model.record["preprocessing"] = job.preprocessing.as_dict()
    model.record["training"] = {**asdict(job.config), "data": loaders.source, "train_images": loaders.sizes[0],
                                "val_images": loaders.sizes[1], "epochs_run": len(history),
                                "best_epoch": state.best_epoch, "device": str(job.device)}
    if form_record is not None:
        model.record["training"]["form"] = form_record
    if group is not None:
        model.record["training"]["processes"] = {"count": group.size, "backend": group.backend}
    written: dict[str, str] = {}
    if group is not None:
        group.leave()
        files = files if job.is_rank_zero else {}
    if files:
        model.record["metrics"] = {k[4:]: v for k, v in history[-1].items() if k.startswith("val/")}
        model.record["training"]["epoch"] = len(history)
        written["last"] = str(save(model, files["last"], force=job.force, registry=job.registry))
        written.update(write_history(history, files["best"]))
    model.load_state_dict(state.best_state)
    model.record["metrics"] = metrics
    model.record["training"]["epoch"] = state.best_epoch
    if files:
        written["best"] = str(save(model, files["best"], force=job.force, registry=job.registry))
        checkpoints.remove()
    return FitResult(model, history, state.best_epoch, metrics, written, loaders.cache_report, form_record,
                     str(job.device))


def _seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def _choose_form(model: ZooModel, train_loader: Any, device: Any, images_planned: int, group: Any,
                 generator: Any) -> tuple[TrainingForm, Any]:
    """`zoo.training.fast.choose_form` on the run's first batch, drawn without moving any random state, so a
    fast run sees the images in the order a plain one does."""
    states = random_states(generator)
    batch = next(iter(train_loader))
    restore_random_states(states, generator)
    return choose_form(model, batch, device, images_planned, group)
