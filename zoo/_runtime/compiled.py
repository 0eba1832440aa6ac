"""The fast inference path every command shares: torch.compile with inductor's freezing applied for
real, channels-last, and bf16 only where the hardware has it and a measurement says it is faster.

``torch.compile(model, options={"freezing": True})`` does not freeze in torch 2.14: inductor's weight
folding passes (BatchNorm folded into convolutions, prepacked mkldnn weights) read the global config,
which the option does not reach, and the model runs several times slower than frozen. `compile_for_inference`
runs every call of the compiled model under ``torch._inductor.config.patch(freezing=True)`` and inference
mode, so the first call (which compiles) and any recompilation fold the weights, while torch's global
configuration is the same before and after.

Where bf16 is native (AVX512-BF16 or AMX, or a GPU that has it), `choose_form` times fp32, bf16 autocast
and a bf16 copy of the weights, each compiled, and keeps the fastest; elsewhere bf16 is emulated and fp32
is the answer without measuring.

Training has its own choice (`TrainingForm`, `choose_training_form`): channels-last for image batches, bf16
autocast where native, and a compiled model only where a measurement says it pays. The weights stay float32
(autocast keeps a float32 master copy for the optimizer), so the saved file is the same kind either way.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from zoo._runtime import machine as _machine
from zoo._runtime.timing import steps_per_second

FORMS = ("fp32", "bf16-autocast", "bf16-weights")
INDUCTOR_SETTINGS = {"freezing": True}  # what zoo asks of inductor for inference: weights folded as constants


def _as_float32(value: Any) -> Any:
    """Outputs of a bf16 model as float32, so decoding and comparing work as for an fp32 model."""
    return torch.utils._pytree.tree_map(
        lambda t: t.float() if torch.is_tensor(t) and t.is_floating_point() and t.dtype != torch.float32 else t,
        value)


class CompiledInference:
    """A model compiled for inference: called like the model, always under inference mode, inductor's
    freezing and, for the bf16 forms, autocast or bf16 inputs; outputs come back as float32."""

    def __init__(self, model: nn.Module, form: str = "fp32", channels_last: bool = False) -> None:
        if form not in FORMS:
            raise ValueError(f"form {form!r} is not one of {', '.join(FORMS)}")
        self.form = form
        self.device_type = next(model.parameters()).device.type
        self.channels_last = channels_last
        if form == "bf16-weights":
            model = copy.deepcopy(model).to(torch.bfloat16)
        self.model = model.eval()
        self.compiled = torch.compile(self.model)

    def _context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch._inductor.config.patch(INDUCTOR_SETTINGS))
        stack.enter_context(torch.inference_mode())
        if self.form == "bf16-autocast":
            stack.enter_context(torch.autocast(self.device_type, dtype=torch.bfloat16))
        return stack

    def _input(self, value: Any) -> Any:
        if not torch.is_tensor(value) or not value.is_floating_point():
            return value
        if self.form == "bf16-weights":
            value = value.to(torch.bfloat16)
        if self.channels_last and value.ndim == 4:
            value = value.contiguous(memory_format=torch.channels_last)
        return value

    def __call__(self, *args: Any) -> Any:
        args = torch.utils._pytree.tree_map(self._input, args)
        with self._context():
            output = self.compiled(*args)
        return output if self.form == "fp32" else _as_float32(output)


def compile_for_inference(model: nn.Module, form: str = "fp32", channels_last: bool = False) -> CompiledInference:
    """``model`` compiled the zoo way for inference (see the module's docstring); ``channels_last``
    turns image batches to that layout on the way in."""
    return CompiledInference(model, form, channels_last)


def compile_for_training(model: nn.Module) -> Callable[..., Any]:
    """``model`` compiled for training: no freezing, the weights change at every step."""
    return torch.compile(model)


def native_bf16(device: torch.device) -> bool:
    """bf16 matrix work in hardware: a GPU that reports it, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return _machine.native_bf16_cpu()


def candidate_forms(model: nn.Module, device: torch.device) -> tuple[str, ...]:
    """The forms worth timing here; a detection model (a list of images in, torchvision's transform
    inside) keeps float32 weights."""
    if not native_bf16(device):
        return ("fp32",)
    if getattr(model, "takes_images", False):
        return ("fp32", "bf16-autocast")
    return FORMS


@dataclass
class FormChoice:
    """Which form `choose_form` kept, and the images per second each form measured (empty: not measured)."""

    form: str
    images_per_s: dict[str, float] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return bool(self.images_per_s)


def time_form(model: nn.Module, inputs: Any, form: str, steps: int = 3) -> float:
    """Images per second of ``model`` compiled in ``form`` on ``inputs`` (one warm-up call compiles)."""
    runner = compile_for_inference(model, form)
    device = next(model.parameters()).device
    return len(inputs) * steps_per_second(lambda: runner(inputs), device, warm_up=1, steps=steps)


def choose_form(model: nn.Module, inputs: Any, forms: Sequence[str] | None = None,
                measure: Callable[[nn.Module, Any, str], float] = time_form) -> FormChoice:
    """The fastest of ``forms`` (default: `candidate_forms`) for ``model`` on ``inputs``, by measuring;
    a single candidate is kept without measuring."""
    device = next(model.parameters()).device
    forms = tuple(forms or candidate_forms(model, device))
    if len(forms) == 1:
        return FormChoice(forms[0])
    rates = {}
    for form in forms:
        torch._dynamo.reset()
        rates[form] = round(measure(model, inputs, form), 2)
    torch._dynamo.reset()
    return FormChoice(max(rates, key=rates.get), rates)


def fast_inference(model: nn.Module, example: Any) -> tuple[CompiledInference, FormChoice]:
    """``model`` in channels-last (unless it takes a list of images), compiled in the fastest form for
    inputs like ``example``: what ``--fast`` runs for every inference command."""
    channels_last = not getattr(model, "takes_images", False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    choice = choose_form(model.eval(), example)
    return compile_for_inference(model, choice.form, channels_last), choice


COMPILE_WORTH_SECONDS = 600.0  # a training run this long (eagerly) is worth a trial compile: it costs tens of seconds
WARM_UP_STEPS, TRIAL_STEPS = 2, 2  # a training form's trial: untimed steps (the first compiles), then timed ones


@dataclass
class TrainingForm:
    """How training steps run: bf16 autocast or fp32, channels-last image batches, compiled or eager; with
    the images per second each measured candidate reached (empty: chosen without measuring)."""

    precision: str = "fp32"
    channels_last: bool = False
    compiled: bool = False
    images_per_s: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        words = ["fp32" if self.precision == "fp32" else f"{self.precision}-autocast"]
        words += ["channels-last"] * self.channels_last + ["compiled"] * self.compiled
        return "+".join(words)

    def autocast(self, device_type: str) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=torch.bfloat16)

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model`` in this form's memory layout (in place)."""
        return model.to(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def inputs(self, value: Any) -> Any:
        """A batch as this form feeds it: image batches channels-last where the form says so."""
        if self.channels_last and torch.is_tensor(value) and value.ndim == 4:
            return value.contiguous(memory_format=torch.channels_last)
        return value

    def outputs(self, value: Any) -> Any:
        """Outputs as float32, so losses and metrics see what they see in fp32 training."""
        return value if self.precision == "fp32" else _as_float32(value)

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.name, "precision": self.precision, "channels_last": self.channels_last,
                "compiled": self.compiled, "images_per_s": dict(self.images_per_s)}


def training_candidates(model: nn.Module, device: torch.device) -> list[TrainingForm]:
    """The eager forms worth timing for training ``model`` here: channels-last for image batches, fp32 and,
    where the hardware has it, bf16 autocast."""
    channels_last = not getattr(model, "takes_images", False)
    precisions = ("fp32", "bf16") if native_bf16(device) else ("fp32",)
    return [TrainingForm(precision, channels_last) for precision in precisions]


def choose_training_form(model: nn.Module, device: torch.device, measure: Callable[[TrainingForm], float], *,
                         images_planned: int = 0, may_compile: bool = True,
                         agree: Callable[[list[float]], list[float]] | None = None) -> TrainingForm:
    """The fastest training form for ``model``: ``measure(form)`` gives a form's images per second (a
    candidate that fails to run is left out). The eager candidates are always measured; the fastest is
    measured compiled too when ``may_compile`` and the run (``images_planned`` at the eager rate) would take
    `COMPILE_WORTH_SECONDS` or more, and kept compiled only if that is faster. ``agree`` lets several
    processes settle on one choice (e.g. rates summed over processes)."""
    candidates = training_candidates(model, device)
    rates = [_rate(measure, form) for form in candidates]
    rates = agree(rates) if agree else rates
    best = max(range(len(candidates)), key=lambda i: rates[i])
    chosen = candidates[best]
    measured = {form.name: round(rate, 2) for form, rate in zip(candidates, rates) if rate > 0}
    if may_compile and rates[best] > 0 and images_planned / rates[best] >= COMPILE_WORTH_SECONDS:
        compiled = TrainingForm(chosen.precision, chosen.channels_last, compiled=True)
        rate = _rate(measure, compiled)
        rate = agree([rate])[0] if agree else rate
        if rate > 0:
            measured[compiled.name] = round(rate, 2)
        if rate > rates[best]:
            chosen = compiled
    chosen.images_per_s = measured
    return chosen


def _rate(measure: Callable[[TrainingForm], float], form: TrainingForm) -> float:
    """``measure(form)``, or 0.0 where this form cannot run here (an operation without bf16, a compile failure)."""
    try:
        return float(measure(form))
    except (RuntimeError, NotImplementedError, TypeError, torch._dynamo.exc.TorchDynamoException):
        torch._dynamo.reset()
        return 0.0
