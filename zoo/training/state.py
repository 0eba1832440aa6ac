"""Where a run of `zoo.fit` stands: the next epoch, the step, the history and the best epoch so far, kept
the same way in memory and in the checkpoint a stopped run resumes from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.training.checkpoint import random_states, restore_random_states

if TYPE_CHECKING:
    from zoo._core.model import ZooModel


def score(row: dict[str, Any], model: ZooModel) -> float:
    """Higher is better: val mAP for detection (no loss in eval mode), else minus the val loss."""
    if model.takes_images:
        return next((v for k, v in row.items() if k.endswith("/map") and k.startswith("val/")), 0.0)
    return -row["val/loss"]


@dataclass
class TrainingState:
    first: int = 1  # the next epoch to run
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, Any] | None = None
    best_score: float = float("-inf")
    best_epoch: int = 0

    def keep_if_best(self, row: dict[str, Any], model: ZooModel) -> None:
        """Keep the model's weights (on the CPU) when this epoch scores better than every earlier one."""
        found = score(row, model)
        if found > self.best_score:
            self.best_score, self.best_epoch = found, row["epoch"]
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def to_checkpoint(self, model: ZooModel, optimizer: Any, generator: Any, form: dict[str, Any] | None) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": self.step,
                "random": random_states(generator), "history": self.history, "best_state": self.best_state,
                "best": [self.best_score, self.best_epoch], "form": form}

    def restore(self, saved: dict[str, Any], model: ZooModel, optimizer: Any, generator: Any) -> None:
        """Continue from a checkpoint: weights, optimizer, random states and where the run stood."""
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        restore_random_states(saved["random"], generator)
        self.history, self.best_state = saved["history"], saved["best_state"]
        self.best_score, self.best_epoch = saved["best"]
        self.step, self.first = saved["step"], saved["epoch"] + 1
