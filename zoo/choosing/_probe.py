"""Transfer quality from frozen features: each image's pooled backbone features, computed once through the
feature cache (`zoo.training.feature_cache`), then a linear probe trained on them and a k-nearest-neighbour
vote, scored on the validation images (or fold by fold).

The cache computes a model's frozen prefix; here the prefix is the whole backbone up to its pooled vector, so a
small wrapper hands the cache a "backbone" whose last module gives exactly that (a ViT's class token, a CNN's
pooled map: whatever the backbone's own ``pooled`` is).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoo._runtime.transforms import of_model
from zoo.choosing._data import ChoiceData
from zoo.files import cache_dir
from zoo.training.feature_cache import DEFAULT_LIMIT_GB, FeatureCache, cache_key

KNN_K = 10
KNN_TEMPERATURE = 0.07  # weighted vote by exp(cosine / T), as in DINO's k-NN evaluation
PROBE_STEPS = 100
PROBE_DECAY = 1e-3
PROBE_SETTINGS = {"k": KNN_K, "t": KNN_TEMPERATURE, "steps": PROBE_STEPS, "decay": PROBE_DECAY, "probe": 1}


class _Pooled(nn.Module):
    """A backbone whose output is its pooled feature vector, the last module being ``pooled`` (where the cache
    stops)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.inner, self.pooled = backbone, nn.Identity()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pooled(self.inner(images).pooled)


class _Extractor(nn.Module):
    """What the feature cache reads of a model: its spec, image size and backbone."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.backbone, self.spec, self.image_size = _Pooled(model.backbone), model.spec, model.image_size


def features(model: Any, data: ChoiceData, batch_size: int, device: torch.device) -> tuple[dict[str, Any], bool]:
    """(part -> (features, readable flags), whether the cache file was built now) for every part of the data."""
    extractor = _Extractor(model).to(device)
    preprocessing = of_model(model)
    transform = preprocessing.eval_transform()
    key = cache_key(extractor, ["inner"], {"pooled": preprocessing.as_dict()}, data.key)
    cache = FeatureCache(extractor, ["pooled"], cache_dir() / "features" / f"{key}.safetensors")
    parts = {name: (samples, transform) for name, samples in data.parts.items()}
    if not cache.build(parts, batch_size, device, DEFAULT_LIMIT_GB * 2**30):
        raise RuntimeError("the feature cache could not be built (see the warning above)")
    found = {name: (cache.tensors[name].float(), cache.tensors[f"{name}.readable"]) for name in data.parts}
    return found, cache.built


def linear_probe(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, classes: int) -> torch.Tensor:
    """Predicted classes of ``test`` by a multinomial logistic regression on standardised features (L-BFGS,
    full batch, a small L2 penalty): what a frozen backbone offers a linear head."""
    mean, std = train.mean(0), train.std(0, unbiased=False).clamp_min(1e-6)
    x, y = (train - mean) / std, labels
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=PROBE_STEPS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(x @ weight + bias, y) + PROBE_DECAY * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return (((test - mean) / std) @ weight + bias).argmax(1)


def knn(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, classes: int) -> torch.Tensor:
    """Predicted classes of ``test`` by its nearest training images (cosine), votes weighted by similarity."""
    a, b = nn.functional.normalize(train, dim=1), nn.functional.normalize(test, dim=1)
    similarity = b @ a.T
    top, index = similarity.topk(min(KNN_K, len(train)), dim=1)
    votes = torch.zeros(len(test), classes)
    votes.scatter_add_(1, labels[index], (top / KNN_TEMPERATURE).exp())
    return votes.argmax(1)


def _split(data: ChoiceData, found: dict[str, Any]):
    """(train x, train y, test x, test y) per round: the validation split once, or each fold against the rest."""
    def part(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, readable = found[name]
        y = torch.tensor([target for _, target in data.parts[name].items])
        return x[readable], y[readable], readable

    if data.folds is None:
        (tx, ty, _), (vx, vy, _) = part("train"), part("val")
        yield tx, ty, vx, vy
        return
    x, y, readable = part("all")
    folds = torch.tensor(data.folds)[readable]
    for fold in sorted(set(folds.tolist())):
        held = folds == fold
        yield x[~held], y[~held], x[held], y[held]


def quality(data: ChoiceData, found: dict[str, Any]) -> dict[str, Any]:
    """Linear-probe and k-NN accuracy over every validation (or held-out) image."""
    classes = len(data.classes)
    right = {"probe": 0, "knn": 0}
    total = 0
    torch.manual_seed(0)
    for tx, ty, vx, vy in _split(data, found):
        right["probe"] += int((linear_probe(tx, ty, vx, classes) == vy).sum())
        right["knn"] += int((knn(tx, ty, vx, classes) == vy).sum())
        total += len(vy)
    if total == 0:
        raise RuntimeError("no validation image could be read")
    return {"accuracy": round(right["probe"] / total, 4), "knn_accuracy": round(right["knn"] / total, 4),
            "scored_images": total, "features": int(next(iter(found.values()))[0].shape[1])}
