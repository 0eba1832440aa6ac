"""Opening a model, one way for every command: a built model as it is, a saved file with its own weights, or
a spec built with the weights asked for. Train, eval, predict, export and bench all open models here, so a
file given with --weights, or a path that is neither a model file nor a spec, reads the same everywhere."""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zoo._core.build import build, freeze as apply_freeze
from zoo._core.saving import load
from zoo._modelfile.read import model_file
from zoo.errors import ZooError, ZooWarning

if TYPE_CHECKING:
    from zoo._core.model import ZooModel
    from zoo._core.weights import Weights
    from zoo._registry.registry import Registry


def open_model(
    model: Any, *, weights: Weights | None = None, freeze: str | None = None, registry: Registry | None = None,
    command: str = "predict", check: Callable[[ZooModel], None] | None = None, warn_untrained: bool = True,
) -> ZooModel:
    """``model``: a `ZooModel`, a saved file or a spec; ``command`` picks the advice for a path that is neither.
    ``freeze`` applies a policy (a spec is built with it). ``check`` refuses a model the command cannot use,
    before any warning about its weights; ``warn_untrained`` warns that a spec without weights answers
    nothing meaningful (predicting, evaluating, exporting)."""
    from zoo._core.model import ZooModel

    if isinstance(model, ZooModel):
        return model if freeze is None else apply_freeze(model, freeze, registry)
    text = os.fspath(model)
    path = model_file(text, command)
    if path is not None:
        if weights is not None:
            raise ZooError(f"{text} is a model file and carries its own weights; drop --weights")
        found = load(path, registry=registry)
        if freeze is not None:
            found = apply_freeze(found, freeze, registry)
    else:
        found = build(text, freeze=freeze, weights=weights, registry=registry)
    if check is not None:
        check(found)
    if warn_untrained and path is None and weights is None:
        warnings.warn(f"{text} has freshly initialised weights, so its answers mean nothing; "
                      "pass --weights or a model file", ZooWarning, stacklevel=2)
    return found
