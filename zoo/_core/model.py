"""The composed model: one backbone, one or more heads, and the stages a freeze policy froze."""
from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from zoo.backbone import Backbone
from zoo.errors import ZooError
from zoo.head import DecodeContext, Head
from zoo.metrics import ModelMetric
from zoo.parts import check_image_heads

if TYPE_CHECKING:
    from zoo._core.recipe import Recipe
    from zoo._registry.registry import Registry

# The registry each model was built in, kept beside the model (not in it: copies and pickles stay light).
_REGISTRIES: weakref.WeakKeyDictionary[nn.Module, Registry] = weakref.WeakKeyDictionary()


class ZooModel(nn.Module):
    """``model(x)`` returns the head's output, or a dict of outputs by head name for several heads.

    Frozen stages have ``requires_grad=False`` and stay in eval mode through ``model.train()``, so
    their BatchNorm running statistics and dropout never change: a frozen part is a fixed function.
    A module whose own parameters are all frozen (chosen by a parameter policy, or by hand) stays in
    eval mode too; `zoo.save` records every frozen parameter and `zoo.load` freezes the same ones.

    Training: ``model.loss(outputs, targets)`` is the sum of each head's loss times its weight
    (``loss_weights``, from the spec's ``weight=`` head option, 1 by default). A detection model
    follows torchvision: ``model(images)`` takes a list of [0, 1] images of any size and, in training,
    ``model(images, targets)`` returns the loss dict.
    """

    def __init__(
        self,
        backbone: Backbone,
        heads: dict[str, nn.Module],
        spec: str,
        loss_weights: Mapping[str, float] | None = None,
        recipe: Recipe | None = None,
    ) -> None:
        super().__init__()
        check_image_heads({key: getattr(head, "inputs", "features") for key, head in heads.items()})
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        for head in self.heads.values():
            if isinstance(head, Head):
                head.attach(backbone)
        self.loss_weights: dict[str, float] = {key: 1.0 for key in heads}
        self.set_loss_weights(loss_weights or {})
        self.spec = spec
        self.recipe = recipe  # what it was built from: saving, re-freezing and benchmarks read it
        self.freeze_policy = "none"
        self.frozen_stages: tuple[str, ...] = ()
        self.policy_frozen: tuple[str, ...] = ()  # the parameters the policy froze; a hand-made freeze differs
        self.labels: dict[str, list[str]] = {}  # class names by head, saved in artifacts
        self.weights_report = None  # a zoo._core.weights.WeightsReport once weights were loaded
        # checks the backbone's first Features against its declared stages (set by the builder), then None
        self.features_check: Callable[[Backbone, Any, torch.Tensor], None] | None = None
        # saved with the model: "preprocessing" (its eval transform), "training" (settings), "metrics" (final)
        self.record: dict[str, Any] = {}

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the images the model is built or trained for: the backbone's input size,
        the one place it is kept (saved as the file's ``input_size``)."""
        return tuple(self.backbone.input_size[1:])

    def set_image_size(self, size: int | Sequence[int]) -> None:
        """Build or train the model for square ``size`` images (or (height, width)); heads that work in the
        input's pixels (key points) are told, and the size is saved with the model."""
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        if min(height, width) < 1:
            raise ZooError(f"image size {height}x{width} must be positive")
        self.backbone.input_size = (self.backbone.input_size[0], int(height), int(width))
        for head in self.heads.values():
            if isinstance(head, Head) and head.inputs == "features":
                head.attach(self.backbone)

    @property
    def registry(self) -> Registry | None:
        """The registry the model was built in: `zoo.save` and `zoo.freeze` use it when given none."""
        return _REGISTRIES.get(self)

    @registry.setter
    def registry(self, registry: Registry) -> None:
        _REGISTRIES[self] = registry

    @property
    def takes_images(self) -> bool:
        """True for a detection model: its input is a list of [0, 1] images of any size, not a batch."""
        return any(getattr(head, "inputs", "features") == "images" for head in self.heads.values())

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor], targets: Any = None):
        if self.takes_images:
            head = next(iter(self.heads.values()))
            return head.forward_images(self.backbone, list(x), targets)
        features = self.backbone(x)
        if self.features_check is not None and not torch.compiler.is_compiling():
            self.features_check(self.backbone, features, x)
            self.features_check = None
        outputs = {name: head(features) for name, head in self.heads.items()}
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return outputs

    def by_head(self, value: Any, what: str = "outputs") -> dict[str, Any]:
        """``value`` as a dict by head name: a single head's bare output or target is wrapped."""
        if len(self.heads) == 1:
            key = next(iter(self.heads))
            return value if isinstance(value, Mapping) and set(value) == {key} else {key: value}
        if not isinstance(value, Mapping):
            raise ZooError(f"{what} of a model with several heads must be a dict by head: {', '.join(self.heads)}")
        return dict(value)

    def set_loss_weights(self, weights: Mapping[str, float]) -> None:
        """Change heads' weights in `loss`; a weight must be a number >= 0 (0 leaves a head untrained)."""
        for key, weight in weights.items():
            if key not in self.heads:
                raise ZooError(f"no head {key!r} to weight; heads: {', '.join(self.heads)}")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
                raise ZooError(f"head {key}: loss weight {weight!r} is invalid; a weight must be a number >= 0")
        self.loss_weights.update({key: float(weight) for key, weight in weights.items()})

    def losses(self, outputs: Any, targets: Any = None) -> dict[str, torch.Tensor]:
        """Each head's own (unweighted) loss, by head name; heads weighted 0 are skipped."""
        outputs = self.by_head(outputs)
        targets = self.by_head(targets, "targets") if not self.takes_images else {key: None for key in self.heads}
        result = {}
        for key, head in self.heads.items():
            if self.loss_weights[key] == 0:
                continue
            if not isinstance(head, Head):
                raise ZooError(f"head {key} ({type(head).__name__}) does not implement zoo.head.Head, so it has no loss")
            if key not in targets:
                raise ZooError(f"targets lack head {key}; give a target for each head: {', '.join(self.heads)}")
            result[key] = head.loss(outputs[key], targets[key])
        return result

    def loss(self, outputs: Any, targets: Any = None) -> torch.Tensor:
        """The training loss: the weighted sum of the heads' losses (see ``loss_weights``)."""
        losses = self.losses(outputs, targets)
        if not losses:
            raise ZooError("every head has loss weight 0; give at least one head a positive weight")
        return sum(self.loss_weights[key] * value for key, value in losses.items())

    def decode(
        self,
        outputs: Any,
        sizes: Sequence[tuple[int, int]],
        *,
        top_k: int = 5,
        threshold: float = 0.5,
        labels: Mapping[str, Sequence[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """Per image, each head's answer by head name; ``sizes`` are the original (width, height)."""
        outputs = self.by_head(outputs)
        labels = {**self.labels, **(labels or {})}
        answers: list[dict[str, Any]] = [{} for _ in sizes]
        for key, head in self.heads.items():
            if not isinstance(head, Head):
                raise ZooError(f"head {key} ({type(head).__name__}) does not implement zoo.head.Head, so it cannot decode")
            names = tuple(labels[key]) if labels.get(key) else None
            context = DecodeContext(tuple(sizes), names, top_k, threshold)
            for answer, decoded in zip(answers, head.decode(outputs[key], context)):
                answer[key] = decoded
        return answers

    def metric(self) -> ModelMetric:
        """A fresh metric over every head: ``update(outputs, targets)`` per batch, then ``compute()``."""
        missing = [key for key, head in self.heads.items() if not isinstance(head, Head)]
        if missing:
            raise ZooError(f"head {missing[0]} does not implement zoo.head.Head, so it has no metric")
        return ModelMetric({key: head.metric() for key, head in self.heads.items()})

    def set_frozen(self, stages: Iterable[str], policy: str, parameters: Iterable[str] = ()) -> None:
        """Freeze exactly ``stages`` and the backbone ``parameters`` named (and unfreeze every other one)."""
        stages = tuple(stages)
        unknown = [s for s in stages if s not in self.backbone.stage_names]
        if unknown:
            raise ZooError(f"no stage {unknown[0]!r}; stages: {', '.join(self.backbone.stage_names)}")
        frozen = set(stages)
        self.frozen_stages = tuple(s for s in self.backbone.stage_names if s in frozen)
        named = dict(self.backbone.named_parameters())
        chosen = list(parameters)
        missing = [name for name in chosen if name not in named]
        if missing:
            raise ZooError(f"the backbone has no parameter {missing[0]!r}")
        self.freeze_policy = policy
        for p in self.parameters():
            p.requires_grad_(True)
        for stage in self.frozen_stages:
            for p in self.backbone.stage_parameters(stage):
                p.requires_grad_(False)
        for name in chosen:
            named[name].requires_grad_(False)
        self.policy_frozen = tuple(self.frozen_parameters())
        self.train(self.training)

    def frozen_parameters(self) -> list[str]:
        """Names (as in ``named_parameters()``) of every parameter that does not train, however it was frozen."""
        return [name for name, p in self.named_parameters() if not p.requires_grad]

    def set_frozen_parameters(self, names: Iterable[str]) -> None:
        """Freeze exactly the parameters named (model-level names), keeping the policy and stages recorded."""
        named = dict(self.named_parameters())
        chosen = set(names)
        missing = sorted(chosen - set(named))
        if missing:
            raise ZooError(f"the model has no parameter {missing[0]!r}")
        for name, p in named.items():
            p.requires_grad_(name not in chosen)
        self.train(self.training)

    def _frozen_modules(self) -> list[nn.Module]:
        return [m for stage in self.frozen_stages for m in self.backbone.stage_modules(stage)]

    def train(self, mode: bool = True) -> ZooModel:
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        if mode:  # a module whose own parameters are all frozen (a policy's or a hand-made choice) is fixed too
            for module in self.modules():
                own = list(module.parameters(recurse=False))
                if own and not any(p.requires_grad for p in own):
                    module.training = False
        return self
