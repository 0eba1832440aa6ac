"""Which heads of loaded weights carry over to a run: a head keeps what it learned only where its labels are
the data's. A classifier taught other classes answers in the wrong names and must unlearn them first: on
digits, a resnet18 trained on 0-4, frozen and fitted on 5-9 (300 images, 5 epochs, AdamW 1e-3) reached 0.31
validation accuracy keeping its head, 0.69 with a fresh one and 0.34 from a random frozen backbone.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from zoo.errors import ZooNotice
from zoo.head import Head, reset_layers

if TYPE_CHECKING:
    from zoo._core.model import ZooModel

_SHOWN = 5  # labels named in a message before "..."


def _names(labels: Sequence[str]) -> str:
    return ", ".join(labels[:_SHOWN]) + (", ..." if len(labels) > _SHOWN else "")


def carry_heads(model: ZooModel, labels: Mapping[str, Sequence[str]], keep: bool = False) -> dict[str, str]:
    """Each head whose weights learned labels (``model.labels``), "kept" or "fresh" against the data's
    ``labels``: one that learned others starts fresh (`Head.start_fresh`) unless ``keep``. One notice says which."""
    decided: dict[str, str] = {}
    said: list[str] = []
    for key, names in labels.items():
        learned = list(model.labels.get(key) or ())
        if not learned or key not in model.heads:
            continue
        if learned == list(names):
            decided[key], line = "kept", f"head {key} keeps its weights: they learned the data's labels"
        elif keep:
            decided[key], line = "kept", (f"head {key} keeps its weights (--keep-heads), though they learned "
                                          f"{_names(learned)} and the data has {_names(list(names))}")
        else:
            head = model.heads[key]
            if isinstance(head, Head):
                head.start_fresh()
            else:
                reset_layers(head)
            decided[key], line = "fresh", (f"head {key} starts fresh: its weights learned {_names(learned)} and the "
                                           f"data has {_names(list(names))} (--keep-heads keeps them)")
        said.append(line)
    if said:
        warnings.warn("; ".join(said), ZooNotice, stacklevel=3)
    return decided
