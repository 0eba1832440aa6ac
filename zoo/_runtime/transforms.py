"""Preprocessing taken from the model: the eval transform it records, and the training augmentation.

The eval transform resizes the whole image to the model's image size (no crop by default, so that key
points and boxes map back onto the whole image, as ``zoo predict`` draws them) with the backbone's
interpolation, mean and std. ``crop_pct`` < 1 gives the classification recipe instead: resize the shorter
side to size / crop_pct, then crop the centre. Training, ``zoo eval`` and ``zoo predict`` use this one
transform, and the saved file records it, so a model is always fed as it was trained. Each pipeline first
makes a PIL image 8-bit RGB, whatever its mode (RGBA, P, L, I;16 ...), as `zoo predict` reads files.

zoo's loaders run each pipeline up to its uint8 tensor in their workers (``as_uint8=True``) and `on_device`
does the float steps on a whole batch on the device, with the same arithmetic. Decoding stays with PIL:
torchvision.io decoded and resized 64-224 px JPEG and PNG files about twice as fast (one core), but up to one
level in 255 away from PIL's pixels, and a saved model records how it was fed.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from zoo._core.build import build
from zoo._core.images import to_rgb
from zoo._modelfile.read import model_file, read_metadata
from zoo._runtime.data import head_parts
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo._core.model import ZooModel

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


class ToRGB:
    """A pipeline's first step: a PIL image of any mode as 8-bit RGB (transparency over white, 16-bit scaled);
    tensors pass unchanged. A class of the module, so that data-loader workers can pickle it."""

    def __call__(self, image: Any) -> Any:
        from PIL import Image

        return to_rgb(image) if isinstance(image, Image.Image) else image

    def __repr__(self) -> str:
        return "ToRGB()"


@dataclass(frozen=True)
class Preprocessing:
    """What the model expects of an image; ``whole`` models (detection) get [0, 1] images of any size."""

    size: tuple[int, int]  # (height, width)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    channels: int = 3
    whole: bool = False

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ZooError(f"interpolation {self.interpolation!r} is unknown; choose {', '.join(INTERPOLATIONS)}")
        if not 0.05 <= self.crop_pct <= 1.0:
            raise ZooError(f"crop_pct {self.crop_pct:g} must be between 0.05 and 1")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"], data["mean"], data["std"] = list(self.size), list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known.update(size=tuple(data["size"]), mean=tuple(data["mean"]), std=tuple(data["std"]))
        return cls(**known)

    def _mode(self):
        from torchvision.transforms import InterpolationMode

        return InterpolationMode(self.interpolation)

    def _finish(self, as_uint8: bool = False) -> list[Any]:
        """The last steps: a uint8 tensor, then (unless ``as_uint8``, where `on_device` does it) float in [0, 1]
        and, but for whole-image models, normalised."""
        import torch
        from torchvision.transforms import v2

        steps: list[Any] = [v2.Grayscale(1)] if self.channels == 1 else []
        steps.append(v2.ToImage())
        if as_uint8:
            return steps
        steps.append(v2.ToDtype(torch.float32, scale=True))
        if not self.whole:
            steps.append(v2.Normalize(list(self.mean), list(self.std)))
        return steps

    def eval_transform(self, as_uint8: bool = False):
        """PIL image of any mode -> normalised float tensor (C, H, W) of the model's size; with ``as_uint8``,
        the uint8 tensor before the float steps (what zoo's loaders decode in their workers)."""
        from torchvision.transforms import v2

        if self.whole:
            return v2.Compose([ToRGB(), *self._finish(as_uint8)])
        if self.crop_pct >= 1.0:
            resize = [v2.Resize(list(self.size), self._mode(), antialias=True)]
        else:
            shorter = [round(side / self.crop_pct) for side in self.size]
            resize = [v2.Resize(min(shorter), self._mode(), antialias=True), v2.CenterCrop(list(self.size))]
        return v2.Compose([ToRGB(), *resize, *self._finish(as_uint8)])

    def train_transform(self, augment: bool = True, scale: tuple[float, float] = (0.08, 1.0), flip: bool = True,
                        as_uint8: bool = False):
        """The seeds' augmentation: a random resized crop and a horizontal flip; ``augment=False`` (and
        models whose targets are positions, such as key points) train on the eval transform."""
        from torchvision.transforms import v2

        if not augment or self.whole:
            return self.eval_transform(as_uint8)
        crop = v2.RandomResizedCrop(list(self.size), scale=scale, interpolation=self._mode(), antialias=True)
        steps = [ToRGB(), crop]
        if flip:
            steps.append(v2.RandomHorizontalFlip())
        return v2.Compose(steps + self._finish(as_uint8))


class ToFloat:
    """uint8 images -> float32 in [0, 1], normalised by ``preprocessing``'s mean and std where given: the
    arithmetic of the eval transform's ``ToDtype(scale=True)`` and ``Normalize``, done on a whole batch on the
    device, so that it gives what the transform gives."""

    def __init__(self, preprocessing: Preprocessing | None) -> None:
        self.mean = None if preprocessing is None else preprocessing.mean
        self.std = None if preprocessing is None else preprocessing.std

    def __call__(self, images: Any) -> Any:
        import torch

        images = images.to(torch.float32).mul_(1.0 / 255)
        if self.mean is None:
            return images
        mean, std = _statistics(self.mean, self.std, images.device)
        return images.sub_(mean).div_(std)

    def __repr__(self) -> str:
        return f"ToFloat(mean={self.mean}, std={self.std})" if self.mean is not None else "ToFloat()"


@functools.lru_cache(maxsize=32)
def _statistics(mean: tuple[float, ...], std: tuple[float, ...], device: Any) -> tuple[Any, Any]:
    """Mean and std as (C, 1, 1) tensors on ``device``, made once (a copy to a GPU each batch would wait)."""
    import torch

    return (torch.tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1),
            torch.tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1))


def on_device(images: Any, preprocessing: Preprocessing, device: Any, channels_last: bool = False) -> Any:
    """A batch from zoo's loaders, made what the model takes: uint8 images (a stacked batch, or a list for
    whole-image models) copied without waiting (pinned memory), laid out channels-last where the form runs so
    (while still 4x smaller), then float and normalised on ``device``, as timm's prefetching loader does. Float
    images (a DataLoader of yours, the feature cache) are only moved."""
    import torch

    if isinstance(images, (list, tuple)):
        return [on_device(image, preprocessing, device) for image in images]
    images = images.to(device, non_blocking=True)
    if channels_last and images.ndim == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    if images.dtype != torch.uint8:
        return images
    return ToFloat(None if preprocessing.whole else preprocessing)(images)


def spatial_targets(model: ZooModel) -> bool:
    """True when a head's targets are positions in the image, which crops and flips would move."""
    if model.takes_images:
        return True
    return any(part.targets is not None and part.targets.spatial for _, part, _ in head_parts(model))


def of_model(model: ZooModel) -> Preprocessing:
    """The model's recorded preprocessing, or the backbone's own (interpolation from its pretrained config)."""
    recorded = model.record.get("preprocessing")
    if recorded:
        return replace(Preprocessing.from_dict(recorded), size=model.image_size)
    backbone = model.backbone
    return Preprocessing(
        size=model.image_size, mean=tuple(backbone.mean), std=tuple(backbone.std),
        interpolation=getattr(backbone, "interpolation", "bilinear"), channels=backbone.input_size[0],
        whole=model.takes_images,
    )


def of_file(path: str | os.PathLike[str]) -> Preprocessing:
    """A saved model's eval preprocessing from its header alone (older files: from its input size, mean, std)."""
    meta = read_metadata(path)
    if meta.get("preprocessing"):
        return Preprocessing.from_dict(meta["preprocessing"])
    channels, height, width = meta["input_size"]
    whole = any(h.get("part") == "zoo/det" for h in meta.get("heads", []))
    return Preprocessing((height, width), tuple(meta["mean"]), tuple(meta["std"]), channels=channels, whole=whole)


def transforms(
    model_or_spec: ZooModel | str | os.PathLike[str],
    train: bool = False,
    *,
    img_size: int | Sequence[int] | None = None,
    augment: bool = True,
    crop_pct: float | None = None,
    interpolation: str | None = None,
):
    """The torchvision.transforms.v2 pipeline a model expects: evaluation by default, augmentation with
    ``train=True``. ``model_or_spec`` is a built model, a saved .safetensors file or a spec.

    >>> zoo.transforms("ants-bees.safetensors")(pil_image)  # doctest: +SKIP
    """
    from zoo._core.model import ZooModel

    if isinstance(model_or_spec, ZooModel):
        preprocessing = of_model(model_or_spec)
        spatial = spatial_targets(model_or_spec)
    elif (path := model_file(model_or_spec, "transforms")) is not None:
        preprocessing = of_file(path)
        spatial = preprocessing.whole
    else:
        built = build(os.fspath(model_or_spec))
        preprocessing, spatial = of_model(built), spatial_targets(built)
    changes: dict[str, Any] = {}
    if img_size is not None:
        changes["size"] = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if crop_pct is not None:
        changes["crop_pct"] = crop_pct
    if interpolation is not None:
        changes["interpolation"] = interpolation
    preprocessing = replace(preprocessing, **changes)
    if train:
        return preprocessing.train_transform(augment=augment and not spatial)
    return preprocessing.eval_transform()
