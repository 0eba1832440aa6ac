"""Each head kind's quality from the cached pooled features: the probes of `zoo.choosing._probe` fitted on the
training images and scored on the validation images (or each fold against the others), as the metrics of
`zoo.choosing._metrics` name them.

Classification: accuracy of the logistic probe and of the k-NN vote. Key points: the mean distance between
predicted and true points, in pixels of the model's square input (``img_size``), as the key-point head measures
it; predictions are kept inside the image, as the head's sigmoid keeps them. Age and gender: the age's mean
absolute error in years and the gender's accuracy. Regressions also give what a constant guess (the training
images' mean) scores, ``constant_*``: a probe no better than that has found nothing.
"""
from __future__ import annotations

from typing import Any

import torch

from zoo.choosing._data import ChoiceData
from zoo.choosing._probe import knn, knn_mean, linear_probe, ridge


def _targets(data: ChoiceData, part: str, readable: torch.Tensor) -> torch.Tensor:
    """The readable images' targets as one tensor: class indices (N,), points (N, 2K) as fractions of the
    image, or (age, gender) (N, 2)."""
    kept = [target for (_, target), ok in zip(data.parts[part].items, readable.tolist()) if ok]
    if data.kind == "cls":
        return torch.tensor(kept, dtype=torch.long)
    if data.kind == "kp":
        return torch.stack([torch.as_tensor(t, dtype=torch.float32).reshape(-1) for t in kept])
    return torch.tensor([[t["age"], t["gender"]] for t in kept], dtype=torch.float32)


def _split(data: ChoiceData, found: dict[str, Any]):
    """(train x, train y, test x, test y) per round: the validation split once, or each fold against the rest."""
    def part(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, readable = found[name]
        readable = readable.bool()
        return x[readable], _targets(data, name, readable), readable

    if data.folds is None:
        (tx, ty, _), (vx, vy, _) = part("train"), part("val")
        yield tx, ty, vx, vy
        return
    x, y, readable = part("all")
    folds = torch.tensor(data.folds)[readable]
    for fold in sorted(set(folds.tolist())):
        held = folds == fold
        yield x[~held], y[~held], x[held], y[held]


def _classes(tx, ty, vx, vy, data: ChoiceData, img_size: int) -> dict[str, float]:
    """Sums over the round's images: right answers of the probe and of the vote."""
    classes = len(data.classes)
    return {"accuracy": float((linear_probe(tx, ty, vx, classes) == vy).sum()),
            "knn_accuracy": float((knn(tx, ty, vx, classes) == vy).sum())}


def _points(tx, ty, vx, vy, data: ChoiceData, img_size: int) -> dict[str, float]:
    """Sums over the round's images of each one's mean point distance in pixels of the input."""
    def error(predicted: torch.Tensor) -> float:
        difference = (predicted.clamp(0, 1) - vy).view(len(vy), -1, 2) * img_size
        return float(difference.norm(dim=-1).mean(1).sum())

    constant = ty.mean(0, keepdim=True).expand_as(vy)
    return {"pixel_error": error(ridge(tx, ty, vx)), "knn_pixel_error": error(knn_mean(tx, ty, vx)),
            "constant_pixel_error": error(constant)}


def _age_gender(tx, ty, vx, vy, data: ChoiceData, img_size: int) -> dict[str, float]:
    """Sums over the round's images: age errors in years, right genders; each by the probe and by k-NN."""
    age, gender = vy[:, 0], vy[:, 1].long()
    majority = int(ty[:, 1].mean() >= 0.5)
    return {"age_mae": float((ridge(tx, ty[:, :1], vx)[:, 0].clamp_min(0) - age).abs().sum()),
            "gender_accuracy": float((linear_probe(tx, ty[:, 1].long(), vx, 2) == gender).sum()),
            "knn_age_mae": float((knn_mean(tx, ty[:, :1], vx)[:, 0] - age).abs().sum()),
            "knn_gender_accuracy": float((knn(tx, ty[:, 1].long(), vx, 2) == gender).sum()),
            "constant_age_mae": float((ty[:, 0].mean() - age).abs().sum()),
            "constant_gender_accuracy": float((gender == majority).sum())}


SCORES = {"cls": _classes, "kp": _points, "agegender": _age_gender}


def quality(data: ChoiceData, found: dict[str, Any], img_size: int) -> dict[str, Any]:
    """The head kind's metrics, each a mean over every validation (or held-out) image."""
    sums: dict[str, float] = {}
    total = 0
    torch.manual_seed(0)
    for tx, ty, vx, vy in _split(data, found):
        for name, value in SCORES[data.kind](tx, ty, vx, vy, data, img_size).items():
            sums[name] = sums.get(name, 0.0) + value
        total += len(vy)
    if total == 0:
        raise RuntimeError("no validation image could be read")
    return {**{name: round(value / total, 4) for name, value in sums.items()}, "scored_images": total,
            "features": int(next(iter(found.values()))[0].shape[1])}
