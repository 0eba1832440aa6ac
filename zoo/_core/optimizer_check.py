"""A warning when an optimizer steps without parameters that a freeze change made trainable.

After ``zoo.freeze(model, "last:2")`` an optimizer made before still holds only the parameters that were
trainable then, and silently never updates the stages just unfrozen. `watch` remembers those parameters;
a global optimizer pre-step hook warns once per optimizer that holds some of the model's parameters but not
the newly trainable ones (`zoo.training.optim.add_unfrozen` adds them).
"""
from __future__ import annotations

import warnings
import weakref
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooWarning

if TYPE_CHECKING:
    import torch

    from zoo._core.model import ZooModel

_watched: list[tuple[weakref.ref, list[weakref.ref]]] = []
_warned: set[tuple[int, int]] = set()
_hook: Any = None


def watch(model: ZooModel, unfrozen: list[torch.nn.Parameter]) -> None:
    """Remember ``unfrozen`` (parameters of ``model`` just made trainable) until optimizers hold them."""
    global _hook
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    _watched[:] = [(m, ps) for m, ps in _watched if m() is not None and m() is not model]
    _watched.append((weakref.ref(model), [weakref.ref(p) for p in unfrozen]))
    if _hook is None:
        _hook = register_optimizer_step_pre_hook(_check)


def _check(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for model_ref, params in _watched:
        model = model_ref()
        if model is None or (id(optimizer), id(model)) in _warned:
            continue
        lacking = [p for p in (ref() for ref in params) if p is not None and p.requires_grad and id(p) not in held]
        if lacking and any(id(p) in held for p in model.parameters()):
            _warned.add((id(optimizer), id(model)))
            count = sum(p.numel() for p in lacking)
            warnings.warn(f"this optimizer lacks {len(lacking)} parameter tensor(s) ({count:,} values) unfrozen by "
                          f"freeze policy {model.freeze_policy}, so they never train; add them with "
                          "zoo.training.optim.add_unfrozen(optimizer, model) or make a new optimizer",
                          ZooWarning, stacklevel=3)
