"""The step a benchmark repeats, for one model: one input batch made once and reused, then either a
forward pass under ``torch.inference_mode`` or a whole optimizer step over what requires grad.

Training uses a stand-in loss (the mean square of every output, or a detection model's own losses on one
synthetic box per image): the backward pass costs the same whatever the loss, and frozen stages, having no
parameter that requires grad, cost none.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from zoo._runtime.timing import steps_per_second, warm_up
from zoo.benchmark._flops import count_flops

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
LEARNING_RATE = 1e-4  # small, so that repeated steps leave the weights sane


def takes_images(model: nn.Module) -> bool:
    """A detection model takes a list of [0, 1] images rather than a batch tensor."""
    return bool(getattr(model, "takes_images", False))


def make_inputs(model: nn.Module, batch_size: int, img_size: int, device: torch.device,
                channels_last: bool = False, channels: int = 3) -> Any:
    """One random batch, made once and reused by every step."""
    generator = torch.Generator().manual_seed(0)
    if takes_images(model):
        return [torch.rand(channels, img_size, img_size, generator=generator).to(device) for _ in range(batch_size)]
    batch = torch.randn(batch_size, channels, img_size, img_size, generator=generator).to(device)
    return batch.contiguous(memory_format=torch.channels_last) if channels_last else batch


def detection_targets(images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """One box in the middle of each image, class 1: enough for a detection model's training losses."""
    targets = []
    for image in images:
        height, width = image.shape[-2:]
        box = torch.tensor([[width / 4, height / 4, 3 * width / 4, 3 * height / 4]], device=image.device)
        targets.append({"boxes": box, "labels": torch.ones(1, dtype=torch.int64, device=image.device)})
    return targets


def stand_in_loss(output: Any) -> torch.Tensor:
    """A detection model's loss dict summed; otherwise the mean square of every floating output."""
    if isinstance(output, Mapping) and output and all(torch.is_tensor(v) and v.ndim == 0 for v in output.values()):
        return sum(output.values())
    leaves = []

    def collect(value: Any) -> None:
        if torch.is_tensor(value):
            if value.is_floating_point():
                leaves.append(value.float().square().mean())
        elif isinstance(value, Mapping):
            for item in value.values():
                collect(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)

    collect(output)
    if not leaves:
        raise TypeError(f"the model's output ({type(output).__name__}) holds no floating tensor to train on")
    return sum(leaves)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def count_params(parameters: Sequence[nn.Parameter] | Any) -> int:
    return sum(p.numel() for p in parameters)


def _set_train(model: nn.Module) -> None:
    model.train()


class Workload:
    """One model's benchmark step for ``mode`` ("infer" or "train") at a batch size and precision.

    ``set_train`` puts the model in training mode; a model that keeps frozen parts in eval mode on its
    own needs nothing more, a plain torchvision model mirroring it gets a function that does the same.
    """

    def __init__(self, model: nn.Module, mode: str, batch_size: int, img_size: int, device: torch.device, *,
                 precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                 compile_if_faster: bool = False, set_train: Callable[[nn.Module], None] = _set_train) -> None:
        self.model, self.mode, self.device = model, mode, device
        self.batch_size = batch_size
        self.channels_last = channels_last
        self.dtype = DTYPES[precision]
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if mode == "train":
            set_train(model)
        else:
            model.eval()
        self.inputs = make_inputs(model, batch_size, img_size, device, channels_last)
        self.targets = detection_targets(self.inputs) if mode == "train" and takes_images(model) else None
        self.parameters = trainable_parameters(model)
        if mode == "train" and not self.parameters:
            raise ValueError("nothing in the model requires grad, so there is no training step to time")
        self.forward: Callable[..., Any] = model
        self.graphs = False  # a training step replayed as CUDA graphs
        self.form: str | None = None  # the compiled inference form (zoo._runtime.compiled.FORMS), or the training form chosen
        if compile:
            self.forward = self._compiled(model, mode, precision, compile_if_faster)
        self.optimizer = torch.optim.SGD(self.parameters, lr=LEARNING_RATE, momentum=0.9) if mode == "train" else None
        use_scaler = mode == "train" and precision == "fp16" and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type) if use_scaler else None
        if compile and compile_if_faster and mode == "train":
            self._keep_compiled_if_faster(precision)

    def _compiled(self, model: nn.Module, mode: str, precision: str, fast: bool) -> Callable[..., Any]:
        """Training compiles plainly; inference freezes the weights, and in bf16 keeps the faster of
        autocast and a bf16 copy of the weights, measured here; under ``fast``, on a GPU, also the CUDA-graph
        modes where they measure faster (see `zoo._runtime.compiled`)."""
        from zoo._runtime import compiled as fast_path
        if mode == "train":
            return fast_path.compile_for_training(model)
        if precision == "fp16":
            self.form = "fp16-autocast"
            return fast_path.compile_for_inference(model)
        forms = ("fp32",) if precision == "fp32" else ("bf16-autocast",) if takes_images(model) else (
            "bf16-autocast", "bf16-weights")
        self.form = fast_path.choose_form(model, self.inputs, forms, modes=None if fast else ()).form
        if precision == "bf16":
            self.dtype = torch.float32  # the form carries the precision: no autocast around it
        return fast_path.compile_for_inference(model, self.form)

    def _keep_compiled_if_faster(self, precision: str) -> None:
        """Time a training step eagerly and compiled (as ``zoo train --fast`` decides), on a GPU also in
        the CUDA-graph modes, and keep the fastest."""
        from zoo._runtime import compiled as fast_path

        forwards = {"": self.model, "compiled": self.forward}
        forwards.update({mode: fast_path.compile_for_training(self.model, mode)
                         for mode in fast_path.graph_modes(self.model, self.device)})
        rates = {}
        for name, forward in forwards.items():
            self.forward, self.graphs = forward, name in fast_path.GRAPH_MODES
            rates[name] = self._trial_rate()
        best = max(rates, key=rates.get)
        self.forward, self.graphs = forwards[best], best in fast_path.GRAPH_MODES
        self.form = ("fp32" if precision == "fp32" else f"{precision}-autocast") + (f"+{best}" if self.graphs else "")

    def _trial_rate(self) -> float:
        """A form's steps per second, or 0.0 where a CUDA-graph form fails to run here."""
        from zoo._runtime.compiled import TRIAL_STEPS, WARM_UP_STEPS

        try:
            return self._rate(WARM_UP_STEPS, TRIAL_STEPS)
        except (RuntimeError, torch._dynamo.exc.TorchDynamoException):
            if not self.graphs:
                raise
            torch._dynamo.reset()
            return 0.0

    def _rate(self, warm_up: int, steps: int) -> float:
        """Steps per second after ``warm_up`` untimed steps (the first compiles, for a compiled model)."""
        return steps_per_second(self.step, self.device, warm_up, steps)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _call(self, forward: Callable[..., Any], inputs: Any, targets: Any) -> Any:
        return forward(inputs) if targets is None else forward(inputs, targets)

    def step(self) -> None:
        """One timed step: a forward pass, or forward + backward + optimizer step."""
        if self.optimizer is None:
            with torch.inference_mode(), self._autocast():
                self._call(self.forward, self.inputs, None)
            return
        self.optimizer.zero_grad(set_to_none=True)
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with self._autocast():
            loss = stand_in_loss(self._call(self.forward, self.inputs, self.targets))
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()

    def warm_up(self, count: int, clock: Any, counting: bool) -> tuple[tuple[float, ...], float | None]:
        """``count`` untimed steps, each one's seconds; with ``counting``, an eager model's first step also
        counts its FLOPs per image (returned, else None), so no separate pass at another batch size is needed."""
        if not counting or count < 1 or self.forward is not self.model:
            return warm_up(self.step, count, clock), None
        counter: list[int] = []
        first = warm_up(lambda: counter.append(count_flops(self.step)), 1, clock)
        return first + warm_up(self.step, count - 1, clock), counter[0] / self.batch_size

    def flops_per_image(self) -> float:
        """FLOPs of one image through the eager fp32 model: the forward pass, or forward + backward.

        Counted with torch's flop counter (see `zoo.benchmark._flops`) on a batch of up to two from the reused input.
        """
        count = min(self.batch_size, 2)
        inputs = self.inputs[:count]
        targets = None if self.targets is None else self.targets[:count]
        if self.optimizer is None:
            with torch.no_grad():
                flops = count_flops(lambda: self._call(self.model, inputs, None))
        else:
            flops = count_flops(lambda: stand_in_loss(self._call(self.model, inputs, targets)).backward())
            for p in self.parameters:
                p.grad = None
        return flops / count

    def release(self) -> None:
        """Drop gradients and optimizer state, so a retry at a smaller batch starts from nothing."""
        for p in self.parameters:
            p.grad = None
        self.optimizer = self.scaler = None
        self.inputs = self.targets = None
