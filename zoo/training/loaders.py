"""The loaders of a run of `zoo.fit`: its data read by the model's transforms, shared out between processes
under torchrun, and, where stages are frozen, fed from the feature cache."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo._runtime.data import load_data, loader
from zoo._runtime.transforms import spatial_targets
from zoo.errors import ZooError
from zoo.training.checkpoint import data_fingerprint
from zoo.training.feature_cache import DEFAULT_LIMIT_GB, use_feature_cache
from zoo.training.transfer import carry_heads

if TYPE_CHECKING:
    from zoo._core.model import ZooModel
    from zoo._runtime.processes import Group


@dataclass
class Loaders:
    train: Any
    val: Any
    sizes: tuple[int | None, int | None]  # images in each, None for a DataLoader of yours
    source: str  # what the model file records as its data
    data_key: str  # the data's fingerprint, which a resumed run must match
    val_group: Group | None  # None: every process validates on all of val
    samples: tuple[Any, Any] | None = None
    augment: bool = False
    cache: Any = None
    cache_report: dict[str, Any] | None = None


def make_loaders(model: ZooModel, data: Any, val: Any, config: Any, preprocessing: Any,
                 group: Group | None, device: Any = None, labels: Mapping[str, list[str]] | None = None) -> Loaders:
    """zoo's own loaders for a folder, a table or a COCO file (the data's labels go to the model), or yours.
    zoo's give uint8 images, made float on ``device`` by the loop (`zoo._runtime.transforms.on_device`)."""
    if not isinstance(data, (str, os.PathLike)):
        if val is None:
            raise ZooError("with your own DataLoader, give a validation DataLoader too (val=...)")
        return Loaders(data, val, (None, None), "DataLoader", "DataLoader", None)
    whole = model.takes_images
    train_samples, val_samples = load_data(model, data, val, config.val_split, config.seed)
    named = _with_given_labels(train_samples.labels, labels or {}, os.fspath(data))
    carry_heads(model, named, config.keep_heads)
    model.labels.update(named)
    augment = config.augment and not spatial_targets(model)
    train_loader = loader(train_samples, preprocessing.train_transform(augment, as_uint8=True), config.batch_size,
                          shuffle=True, whole=whole, workers=config.workers, seed=config.seed, device=device)
    val_loader = loader(val_samples, preprocessing.eval_transform(as_uint8=True), config.batch_size, shuffle=False,
                        whole=whole, workers=config.workers, device=device)
    if group is not None:
        group.check_samples(len(train_samples))
        train_loader = group.shard(train_loader, config.seed)
        val_loader = group.own_batches(val_loader)
    return Loaders(train_loader, val_loader, (len(train_samples), len(val_samples)), os.fspath(data),
                   data_fingerprint([train_samples, val_samples]), group, (train_samples, val_samples), augment)


def _with_given_labels(found: Mapping[str, list[str]], given: Mapping[str, list[str]], data: str) -> dict[str, list[str]]:
    """The data's names for each head, with the names given (``--labels``) for heads the data leaves unnamed (a
    table's class indices); names given for a head the data names differently are refused."""
    for key, names in given.items():
        if key in found and list(found[key]) != list(names):
            raise ZooError(f"--labels names {key}'s classes {', '.join(names)}, but {data} names them "
                           f"{', '.join(found[key])}; drop --labels (class folders name their classes)")
    return {**given, **found}


def add_feature_cache(loaders: Loaders, model: ZooModel, preprocessing: Any, config: Any, device: Any,
                      limit_gb: float | None, group: Group | None) -> None:
    """Feed the loaders from the feature cache where the frozen stages allow it (zoo's own data only)."""
    if loaders.samples is None:
        return
    found = use_feature_cache(model, *loaders.samples, preprocessing, loaders.data_key, config.batch_size,
                              config.seed, device, limit_gb or DEFAULT_LIMIT_GB,
                              views=config.feature_cache_views if loaders.augment else 0, group=group)
    if found is None:
        return
    loaders.cache, loaders.train, loaders.val = found
    if group is not None:
        loaders.train, loaders.val = group.shard(loaders.train, config.seed), group.own_batches(loaders.val)
    views = len(loaders.train.dataset.views) if config.feature_cache_views and loaders.augment else 0
    loaders.cache_report = {"file": str(loaders.cache.path), "bytes": loaders.cache.size_bytes,
                            "built": loaders.cache.built, "views": views}
