"""Feature cache: when every stage before the first trainable one is frozen, those stages are a fixed function,
so their output for an image (through the eval transform) is computed once and kept on disk; every epoch then
trains the rest of the model on the cached tensors.

With ``views`` (``--feature-cache-views N``), each training image is also run through the training transform
(random crop and flip) N times, each view drawn from its own seed; epoch k trains on view k mod N, so a cached
run still sees augmented images.

The cache is a safetensors file under ``$ZOO_CACHE_DIR/features/``, named by a hash of what decides its contents
(the frozen stages' weights, the transforms, the image size, the data files and targets, the views and their
seed), so a change to any of them builds a new one. While training on it, the frozen modules pass their input
through unchanged (their ``forward`` is shadowed on the instance, so the model's weights and state dict stay as
they are), and the first batch is checked against the whole model before the cache is trusted.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._runtime.data import ImageDataset, collate, default_workers
from zoo.errors import ZooWarning
from zoo.files import cache_dir

if TYPE_CHECKING:
    import torch

    from zoo._core.model import ZooModel
    from zoo._runtime.data import Samples
    from zoo._runtime.processes import Group

DEFAULT_LIMIT_GB = 8.0


class _Captured(Exception):
    """Raised by a forward hook to stop the backbone once the frozen prefix has run."""

    def __init__(self, value: Any) -> None:
        self.value = value


def frozen_prefix(model: ZooModel) -> list[str] | None:
    """Names of the modules that run before the first trainable stage, in forward order; None when no cache fits
    (nothing frozen, frozen stages that are not a prefix, stage parameters outside modules, whole-image models,
    heads reading a frozen stage's output other than the last one's)."""
    names = model.backbone.stage_names
    frozen = [name for name in names if name in model.frozen_stages]
    if not frozen or model.takes_images or tuple(frozen) != names[:len(frozen)]:
        return None
    if any(model.backbone.stage(name).parameters for name in frozen) or _reads_inner_stages(model, frozen):
        return None
    return [module for name in frozen for module in model.backbone.stage(name).modules]


def _reads_inner_stages(model: ZooModel, frozen: list[str]) -> bool:
    """Whether a head reads the output of a frozen stage before the last frozen one (``needs="stages"``). The
    cache keeps only the last frozen stage's output, so such a head would read the cached tensor in place of
    those stages: no cache is attempted for it, rather than one built and then found not to match."""
    inner = [name for name in frozen[:-1] if model.backbone.stage(name).stride is not None]
    recipe = getattr(model, "recipe", None)
    return bool(inner) and recipe is not None and any(head.part.needs == "stages" for head in recipe.heads)


def cache_key(model: ZooModel, modules: list[str], transform: dict[str, Any], data_key: str) -> str:
    """A hash of the frozen weights, the transform, the image size and the data."""
    import torch

    digest = hashlib.sha256()
    digest.update(json.dumps({"spec": model.spec, "modules": modules, "transform": transform,
                              "size": list(model.image_size), "data": data_key, "torch": torch.__version__},
                             sort_keys=True, default=str).encode())
    for module in modules:
        for name, tensor in sorted(model.backbone.get_submodule(module).state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def prefix_output(model: ZooModel, modules: list[str], images: torch.Tensor) -> torch.Tensor:
    """The frozen prefix's output for ``images``: the backbone runs until its last frozen module, then stops."""
    last = model.backbone.get_submodule(modules[-1])

    def capture(module: Any, inputs: Any, output: Any) -> None:
        raise _Captured(output)

    handle = last.register_forward_hook(capture)
    try:
        model.backbone(images)
    except _Captured as captured:
        return captured.value
    finally:
        handle.remove()
    raise RuntimeError(f"the backbone never ran {modules[-1]}")


class FeatureCache:
    """The cached prefix outputs of one run's training and validation images."""

    def __init__(self, model: ZooModel, modules: list[str], path: Path) -> None:
        self.model, self.modules, self.path = model, modules, path
        self.tensors: dict[str, torch.Tensor] = {}
        self.built = False
        self._images_shape: Any = None  # the hook handle while bypassed

    def build(self, parts: dict[str, tuple[Samples, Any]], batch_size: int, device: Any, limit_bytes: float,
              seed: int = 0) -> bool:
        """Read the file if it exists, else compute every image's prefix output and write it; False when the
        cache would exceed ``limit_bytes`` or cannot be written (training then goes without it). Each part is
        drawn under its own seed (``seed`` and its place), so random views are the same every time, and the
        random state of the run is left as it was."""
        import torch
        from safetensors import safe_open
        from safetensors.torch import save_file


        if self.path.is_file():
            with safe_open(str(self.path), framework="pt") as handle:  # memory-mapped; each tensor read once
                self.tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            return True
        found: dict[str, torch.Tensor] = {}
        self.model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            size = 0
            for place, (part, (samples, transform)) in enumerate(parts.items()):
                torch.manual_seed(seed * 1009 + place)
                outputs, readable = [], []
                workers = 0 if ".view" in part else default_workers(device)  # a view's draws: in this process
                for images, flags in _batches(ImageDataset(samples, transform), batch_size, workers, device):
                    images = images.to(device, non_blocking=True)
                    outputs.append(prefix_output(self.model, self.modules, images).to("cpu"))
                    readable.append(flags)
                    size += outputs[-1].numel() * outputs[-1].element_size()
                    if size > limit_bytes:
                        warnings.warn(f"the feature cache would exceed {limit_bytes / 2**30:.1f} GiB; training without "
                                      "it (raise the limit with --feature-cache-limit)", ZooWarning, stacklevel=2)
                        return False
                found[part] = torch.cat(outputs).contiguous()
                found[f"{part}.readable"] = torch.cat(readable)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_file(found, str(temporary), metadata=described(self.model, self.modules, parts))
            os.replace(temporary, self.path)
        except (OSError, RuntimeError) as exc:  # safetensors reports a failed write as either
            reason = getattr(exc, "strerror", None) or exc
            warnings.warn(f"the feature cache cannot be written in {self.path.parent} ({reason}); training without it",
                          ZooWarning, stacklevel=2)
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            return False
        self.tensors, self.built = found, True
        return True

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.is_file() else 0

    def dataset(self, part: str, samples: Samples) -> CachedDataset:
        """The cached part; its augmented views too where the cache holds them (``train.view0``, ...)."""
        views = [self.tensors[name] for name in sorted(self.tensors, key=_view_number)
                 if re.fullmatch(rf"{re.escape(part)}\.view\d+", name)]
        return CachedDataset(views or [self.tensors[part]], self.tensors[f"{part}.readable"], samples)

    def bypass(self) -> None:
        """Make the frozen modules pass their input through: the model now takes cached tensors. The backbone's
        `Features` then carry a stand-in of the images' shape as their inputs, so that a head measuring in the
        input's pixels (key points) measures in the images' pixels, as it does on the images themselves."""
        for name in self.modules:
            self.model.backbone.get_submodule(name).forward = _passthrough
        if self._images_shape is None:
            self._images_shape = self.model.backbone.register_forward_hook(_images_shape(self.model.backbone))

    def restore(self) -> None:
        for name in self.modules:
            module = self.model.backbone.get_submodule(name)
            if "forward" in vars(module):
                del module.forward
        if self._images_shape is not None:
            self._images_shape.remove()
            self._images_shape = None


def _view_number(name: str) -> int:
    """K of a ``PART.viewK`` tensor, for ordering views (-1 for other names)."""
    found = re.search(r"\.view(\d+)$", name)
    return int(found.group(1)) if found else -1


def _passthrough(x: Any, *args: Any, **kwargs: Any) -> Any:
    return x


def _images_shape(backbone: Any) -> Callable[..., Any]:
    """A forward hook giving the backbone's `Features` the shape of the images the cache was built from (the
    backbone's input size, as the cache key records) in place of the cached tensors: a zero expanded to that
    shape, which allocates nothing."""

    def hook(module: Any, args: Any, features: Any) -> Any:
        batch = args[0]
        return features._replace(inputs=batch.new_zeros(()).expand(batch.shape[0], *backbone.input_size))

    return hook


def _batches(dataset: Any, batch_size: int, workers: int = 0, device: Any = None):
    """(images, per-image readable flags) in order; an unreadable image gets zeros so that indices stay aligned.
    With ``workers``, images are read in that many loader processes (pinned for a CUDA ``device``)."""
    import torch
    from torch.utils.data import DataLoader

    if workers > 0:
        yield from DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=_stacked,
                              pin_memory=device is not None and torch.device(device).type == "cuda")
        return
    for start in range(0, len(dataset), batch_size):
        yield _stacked([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


def _stacked(got: list[Any]) -> tuple[Any, Any]:
    """One batch of `_batches`, zeros standing for the unreadable images."""
    import torch

    shape = next((g[0].shape for g in got if g is not None), (3, 1, 1))
    return (torch.stack([g[0] if g is not None else torch.zeros(shape) for g in got]),
            torch.tensor([g is not None for g in got]))


class CachedDataset:
    """(cached tensor, target) per sample; None for an image that could not be read when the cache was built.
    With several views, `set_epoch` picks the one an epoch trains on (epoch 1: the first)."""

    def __init__(self, views: list[torch.Tensor], readable: torch.Tensor, samples: Samples) -> None:
        self.views, self.readable, self.items = views, readable, samples.items
        self.collate_targets = samples.collate_targets
        self.features = views[0]

    def set_epoch(self, epoch: int) -> None:
        self.features = self.views[(epoch - 1) % len(self.views)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, Any] | None:
        target = self.items[index][1]
        if target is None or not bool(self.readable[index]):
            return None
        return self.features[index], target


def described(model: Any, modules: list[str], parts: dict[str, tuple[Samples, Any]]) -> dict[str, str]:
    """What the file's header says it holds, for ``zoo cache list``: model, frozen modules, data, images, views."""
    paths = [str(path) for samples, _ in parts.values() for path, _ in samples.items]
    try:
        data = os.path.commonpath(paths) if paths else "?"
    except ValueError:  # files on different drives
        data = "several folders"
    images = sum(len(samples) for name, (samples, _) in parts.items() if ".view" not in name)
    views = sum(".view" in name for name in parts)
    return {"model": str(getattr(model, "spec", type(model).__name__)), "modules": ",".join(modules), "data": data,
            "images": str(images), "views": str(views)}


def cached_loader(dataset: CachedDataset, batch_size: int, *, shuffle: bool, seed: int = 0):
    """A DataLoader over cached tensors, batching as `zoo._runtime.data.loader` does."""
    from functools import partial

    import torch
    from torch.utils.data import DataLoader


    batch = partial(collate, whole=False, targets_by=dataset.collate_targets)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=batch,
                      generator=torch.Generator().manual_seed(seed), drop_last=shuffle and len(dataset) > batch_size)


def matches_model(model: ZooModel, cache: FeatureCache, images: torch.Tensor) -> bool:
    """Whether the model on cached tensors computes what it computes on images (a backbone whose forward does
    more than call its stage modules in order would not)."""
    import torch

    model.eval()
    with torch.no_grad():
        whole = model(images)
        features = prefix_output(model, cache.modules, images)
        cache.bypass()
        try:
            cached = model(features)
        except Exception:  # shapes that do not fit: the backbone does not chain its modules
            return False
        finally:
            cache.restore()
    pairs = [(whole[k], cached[k]) for k in whole] if isinstance(whole, dict) else [(whole, cached)]
    return all(a.shape == b.shape and torch.allclose(a, b, rtol=1e-3, atol=1e-4) for a, b in pairs)


def use_feature_cache(model: ZooModel, train: Samples, val: Samples, preprocessing: Any, data_key: str,
                      batch_size: int, seed: int, device: Any, limit_gb: float = DEFAULT_LIMIT_GB, views: int = 0,
                      group: Group | None = None):
    """(cache, train loader, val loader) over cached prefix outputs, or None when no cache fits this run; with
    ``views``, that many augmented views of each training image are cached too and the epochs take turns.
    Under torchrun (``group``) the first process builds the file while the others wait, then all read it."""

    modules = frozen_prefix(model)
    if modules is None:
        return None
    transform_of = preprocessing.eval_transform()
    parts = {"train": (train, transform_of), "val": (val, transform_of)}
    described: dict[str, Any] = preprocessing.as_dict()
    if views:
        augmented = preprocessing.train_transform(True)
        parts.update({f"train.view{k}": (train, augmented) for k in range(views)})
        described = {"eval": described, "views": views, "seed": seed, "train": repr(augmented)}
    path = cache_dir() / "features" / f"{cache_key(model, modules, described, data_key)}.safetensors"
    cache = FeatureCache(model, modules, path)
    if not _build_once(cache, parts, batch_size, device, limit_gb * 2**30, seed, group):
        return None
    probe = next(_batches(_first(train, transform_of), min(4, len(train))))[0].to(device)
    if not matches_model(model, cache, probe):
        warnings.warn(f"{model.spec}: the model on cached features does not compute what it computes on images (a "
                      "head reads a frozen stage, or the backbone does not run its frozen stages as a chain); "
                      "training without the feature cache", ZooWarning, stacklevel=2)
        return None
    return (cache, cached_loader(cache.dataset("train", train), batch_size, shuffle=True, seed=seed),
            cached_loader(cache.dataset("val", val), batch_size, shuffle=False))


def _build_once(cache: FeatureCache, parts: dict[str, tuple[Samples, Any]], batch_size: int, device: Any,
                limit_bytes: float, seed: int, group: Group | None) -> bool:
    """`FeatureCache.build` in one process; under torchrun the first builds (or finds) the file, the others
    wait for it (the sum of a flag is the barrier) and read it, or all go without it."""
    if group is None:
        return cache.build(parts, batch_size, device, limit_bytes, seed)
    built = cache.build(parts, batch_size, device, limit_bytes, seed) if group.is_rank_zero else False
    if group.total(float(built))[0] < 1:
        return False
    return built or cache.build(parts, batch_size, device, limit_bytes, seed)


def _first(samples: Samples, transform: Any) -> Any:

    dataset = ImageDataset(samples, transform)
    return [item for item in (dataset[i] for i in range(min(8, len(dataset)))) if item is not None]
