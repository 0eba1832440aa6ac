"""Counting a model's FLOPs with torch's flop counter, with the weight gradient of grouped convolutions
counted right: torch counts it ``groups`` times over, so a depthwise network's backward would seem
hundreds of times dearer than its forward pass.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _transposed(shape) -> list[int]:
    return [shape[1], shape[0], *shape[2:]]


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                         output_padding, groups, output_mask, out_shape, **kwargs: Any) -> int:
    """torch's formula for ``convolution_backward`` with its weight-gradient term divided by ``groups``."""
    from torch.utils.flop_counter import conv_flop_count

    flops = 0
    if output_mask[0]:  # the input's gradient: a transposed convolution of grad_out with the weight
        flops += conv_flop_count(grad_out_shape, w_shape, out_shape[0], not transposed)
    if output_mask[1]:  # the weight's gradient: a convolution of the input with grad_out, per group
        first, second = (grad_out_shape, x_shape) if transposed else (x_shape, grad_out_shape)
        flops += conv_flop_count(_transposed(first), _transposed(second), _transposed(out_shape[1])) // groups
    return flops


def count_flops(run: Callable[[], Any]) -> int:
    """FLOPs (two per multiply-add) of everything ``run()`` does, forward and backward."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops})
    with counter:
        run()
    return counter.get_total_flops()
