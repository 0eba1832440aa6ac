"""Frozen BatchNorm: statistics and affine terms as buffers, as torchvision's detection models use.

A module swap survives ``model.train()`` (a ``requires_grad`` flag or an eval() call does not), and
small detection batches would ruin BatchNorm statistics anyway.
"""
from __future__ import annotations

from torch import nn


def _frozen(module: nn.BatchNorm2d) -> nn.Module:
    from torchvision.ops.misc import FrozenBatchNorm2d

    frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
    if module.affine:
        frozen.weight.copy_(module.weight.detach())
        frozen.bias.copy_(module.bias.detach())
    if module.running_mean is not None:
        frozen.running_mean.copy_(module.running_mean)
        frozen.running_var.copy_(module.running_var)
    return frozen


def freeze_batchnorm(module: nn.Module) -> int:
    """Replace every BatchNorm2d inside ``module`` by a FrozenBatchNorm2d holding the same values.

    timm's BatchNorm-with-activation layers become timm's frozen equivalent, keeping the activation.
    Returns how many layers were replaced.
    """
    count = 0
    for name, child in list(module.named_children()):
        if type(child) in (nn.BatchNorm2d, nn.SyncBatchNorm):
            module.add_module(name, _frozen(child))
            count += 1
        elif isinstance(child, nn.BatchNorm2d) and type(child).__module__.startswith("timm."):
            from timm.layers import freeze_batch_norm_2d

            module.add_module(name, freeze_batch_norm_2d(child))
            count += 1
        else:
            count += freeze_batchnorm(child)
    return count
