"""Running a model on batches for inference, eagerly or compiled: what ``zoo predict --fast`` and
``zoo eval --fast`` share."""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooWarning

if TYPE_CHECKING:
    from zoo._core.model import ZooModel


class InferenceRunner:
    """Runs the model on a batch: eagerly, or with ``fast`` through `zoo._runtime.compiled`'s compiled path,
    made on the first batch (the choice of form is measured on it where bf16 is native)."""

    def __init__(self, model: ZooModel, fast: bool) -> None:
        self.model, self.fast, self.compiled = model, fast, None
        self.choice = None
        if fast and model.takes_images:
            warnings.warn("--fast compiles models that take an image batch; a detection model runs eagerly",
                          ZooWarning, stacklevel=3)
            self.fast = False

    def __call__(self, batch: Any) -> Any:
        import torch

        if not self.fast:
            with torch.inference_mode():
                return self.model(batch)
        if self.compiled is None:
            from zoo._runtime.compiled import fast_inference

            self.compiled, self.choice = fast_inference(self.model, batch)
        return self.compiled(batch)
