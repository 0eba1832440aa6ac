"""Built-in task heads."""
from __future__ import annotations

from zoo import hookimpl
from zoo.parts import HeadPart, Option


def _build_classification(features, size, **options):
    from zoo.plugins.classification import ClassificationHead

    return ClassificationHead(features.num_features, size, **options)


@hookimpl
def zoo_heads():
    yield HeadPart(
        "cls",
        _build_classification,
        "classification: pooled features -> [hidden + ReLU] -> [dropout] -> logits",
        namespace="zoo",
        size_label="classes",
        options=(
            Option("hidden", int, None, "width of a hidden layer with ReLU before the logits", minimum=1),
            Option("dropout", float, 0.0, "dropout probability before the logits", minimum=0.0, maximum=0.999),
        ),
    )
