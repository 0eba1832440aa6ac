"""A test plugin whose head leaves the graph (through numpy), so that no exporter can trace it."""
from __future__ import annotations

from zoo import hookimpl
from zoo.parts import HeadPart


def _numpy_head(features, size, **options):
    import torch
    from torch import nn

    from zoo.head import Head
    from zoo.metrics import SampleMean

    class NumpyHead(Head):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(features.num_features, size)

        def forward(self, inputs):
            logits = self.fc(inputs.pooled)
            return torch.from_numpy(logits.detach().numpy().copy())

        def loss(self, output, target):
            return nn.functional.cross_entropy(output, target)

        def decode(self, output, context):
            return [{"class": context.label(int(row.argmax()))} for row in output]

        def metric(self):
            return SampleMean(lambda output, target: {"accuracy": (output.argmax(1) == target).float()})

    return NumpyHead()


@hookimpl
def zoo_heads():
    yield HeadPart("numpyhead", _numpy_head, "a head that computes through numpy", size_label="classes")
