"""Transfer quality from frozen features: each image's pooled backbone features, computed once through the
feature cache (`zoo.training.feature_cache`), and the probes fitted on them: a logistic probe and a
k-nearest-neighbour vote for classes, a ridge probe and a k-NN (similarity-weighted) mean for numbers (key
points, age). `zoo.choosing._quality` scores them per head kind on the validation images (or fold by fold).

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
RIDGE = 1e-2  # the L2 penalty, as a share of the kernel's diagonal (the count of standardised features)
PROBE_SETTINGS = {"k": KNN_K, "t": KNN_TEMPERATURE, "steps": PROBE_STEPS, "decay": PROBE_DECAY, "ridge": RIDGE,
                  "probe": 2}


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


def ridge(train: torch.Tensor, values: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """Predicted ``values`` (N, D) of ``test`` by linear least squares with a small L2 penalty on standardised
    features, solved in whichever of the feature or the image space is smaller."""
    mean, std = train.mean(0), train.std(0, unbiased=False).clamp_min(1e-6)
    x, z = ((train - mean) / std).double(), ((test - mean) / std).double()
    centre = values.double().mean(0)
    y = values.double() - centre
    penalty = RIDGE * x.shape[1]
    if x.shape[0] <= x.shape[1]:  # dual: w = X^T (X X^T + a I)^-1 y
        kernel = x @ x.T + penalty * torch.eye(x.shape[0], dtype=x.dtype)
        predicted = z @ (x.T @ torch.linalg.solve(kernel, y))
    else:
        gram = x.T @ x + penalty * torch.eye(x.shape[1], dtype=x.dtype)
        predicted = z @ torch.linalg.solve(gram, x.T @ y)
    return (predicted + centre).float()


def _neighbours(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights, indices) of each test image's nearest training images (cosine), weighted by exp(cosine / T)."""
    a, b = nn.functional.normalize(train, dim=1), nn.functional.normalize(test, dim=1)
    top, index = (b @ a.T).topk(min(KNN_K, len(train)), dim=1)
    return ((top - top[:, :1]) / KNN_TEMPERATURE).exp(), index


def knn(train: torch.Tensor, labels: torch.Tensor, test: torch.Tensor, classes: int) -> torch.Tensor:
    """Predicted classes of ``test`` by its nearest training images (cosine), votes weighted by similarity."""
    weights, index = _neighbours(train, test)
    votes = torch.zeros(len(test), classes, dtype=weights.dtype)
    votes.scatter_add_(1, labels[index], weights)
    return votes.argmax(1)


def knn_mean(train: torch.Tensor, values: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """Predicted ``values`` (N, D) of ``test``: its nearest training images' values, averaged with the vote's
    weights."""
    weights, index = _neighbours(train, test)
    weights = weights / weights.sum(1, keepdim=True)
    return (weights.unsqueeze(-1) * values.float()[index]).sum(1)
