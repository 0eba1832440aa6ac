"""What a run of `zoo.fit` is asked to do: the settings, checked before anything runs."""
from __future__ import annotations

from dataclasses import dataclass

from zoo.errors import ZooError
from zoo.training import DEFAULT_EPOCHS

DEFAULT_LR = {"sgd": 0.01, "adamw": 0.001}


@dataclass
class Settings:
    """What a run was asked to do; saved in the model file under ``training``."""

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 32
    img_size: int | None = None
    lr: float | None = None
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup: int = 0  # epochs of linear warm-up
    backbone_lr: float = 1.0  # backbone stages learn at lr * backbone_lr
    layer_decay: float | None = None
    unfreeze: str | None = None  # "3:layer4,6:layer3"
    augment: bool = True
    val_split: float | None = None
    seed: int = 0
    workers: int | None = None  # loader processes; None: from the machine (zoo._runtime.data.default_workers)
    feature_cache_views: int = 0  # augmented views of each training image kept in the feature cache
    fast: bool = False  # channels-last, bf16 autocast where native, compiled where it pays (zoo.training.fast)
    keep_heads: bool = False  # keep heads whose weights learned other labels than the data's (zoo.training.transfer)

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ZooError(f"epochs ({self.epochs}) and batch size ({self.batch_size}) must be 1 or more")
        if self.warmup < 0 or (self.warmup and self.warmup >= self.epochs):
            raise ZooError(f"--warmup {self.warmup} must be fewer epochs than --epochs {self.epochs}")
        if self.feature_cache_views < 0:
            raise ZooError(f"--feature-cache-views must be 0 or more, not {self.feature_cache_views}")
        if self.optimizer not in DEFAULT_LR:
            raise ZooError(f"unknown optimizer {self.optimizer!r}; choose {', '.join(DEFAULT_LR)}")
