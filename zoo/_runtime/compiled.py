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
is the answer without measuring. On a GPU, for a model fed one batch tensor (static shapes), the fastest of
those is also timed compiled in inductor's CUDA-graph modes (`GRAPH_MODES`: a form ``bf16-weights+reduce-overhead``)
and kept only where faster.

Training has its own choice (`TrainingForm`, `choose_training_form`): channels-last for image batches, bf16
autocast where native, and a compiled model (on a GPU also replayed as CUDA graphs) only where the measured
compile time is less than the time its faster steps save over the run. The weights stay float32
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
# inductor's modes that replay CUDA graphs (launch overhead gone) where shapes stay static: a form
# "bf16-weights+reduce-overhead" is the bf16-weights form compiled in that mode
GRAPH_MODES = ("reduce-overhead", "max-autotune")
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
        precision, _, mode = form.partition("+")
        if precision not in FORMS or (mode and mode not in GRAPH_MODES):
            raise ValueError(f"form {form!r} is not one of {', '.join(FORMS)}, optionally +{' or +'.join(GRAPH_MODES)}")
        self.form, self.precision, self.graphs = form, precision, bool(mode)
        self.device_type = next(model.parameters()).device.type
        self.channels_last = channels_last
        if precision == "bf16-weights":
            model = copy.deepcopy(model).to(torch.bfloat16)
        self.model = model.eval()
        self.compiled = torch.compile(self.model, mode=mode or None)

    def _context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch._inductor.config.patch(INDUCTOR_SETTINGS))
        stack.enter_context(torch.inference_mode())
        if self.precision == "bf16-autocast":
            stack.enter_context(torch.autocast(self.device_type, dtype=torch.bfloat16))
        return stack

    def _input(self, value: Any) -> Any:
        if not torch.is_tensor(value) or not value.is_floating_point():
            return value
        if self.precision == "bf16-weights":
            value = value.to(torch.bfloat16)
        if self.channels_last and value.ndim == 4:
            value = value.contiguous(memory_format=torch.channels_last)
        return value

    def __call__(self, *args: Any) -> Any:
        args = torch.utils._pytree.tree_map(self._input, args)
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()  # each call a new step: the graph's buffers are reused
        with self._context():
            output = self.compiled(*args)
        if self.graphs:  # the next replay overwrites the graph's outputs: the caller gets its own
            output = torch.utils._pytree.tree_map(lambda t: t.clone() if torch.is_tensor(t) else t, output)
        return output if self.precision == "fp32" else _as_float32(output)


def compile_for_inference(model: nn.Module, form: str = "fp32", channels_last: bool = False) -> CompiledInference:
    """``model`` compiled the zoo way for inference (see the module's docstring); ``channels_last``
    turns image batches to that layout on the way in."""
    return CompiledInference(model, form, channels_last)


def compile_for_training(model: nn.Module, mode: str | None = None) -> Callable[..., Any]:
    """``model`` compiled for training: no freezing, the weights change at every step; ``mode`` one of
    `GRAPH_MODES` replays CUDA graphs."""
    return torch.compile(model, mode=mode)


def native_bf16(device: torch.device) -> bool:
    """bf16 matrix work in hardware: a GPU that reports it, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return _machine.native_bf16_cpu()


def graph_modes(model: nn.Module, device: torch.device) -> tuple[str, ...]:
    """The CUDA-graph compile modes worth timing: on a GPU, for a model fed one image batch tensor (static
    shapes); none on a CPU or for a detection model, whose inputs change shape image by image."""
    if device.type != "cuda" or not torch.cuda.is_available() or getattr(model, "takes_images", False):
        return ()
    return GRAPH_MODES


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
                measure: Callable[[nn.Module, Any, str], float] = time_form, *,
                modes: Sequence[str] | None = None, device: torch.device | None = None) -> FormChoice:
    """The fastest of ``forms`` (default: `candidate_forms`) for ``model`` on ``inputs``, by measuring;
    then the fastest of those compiled in each of ``modes`` (default: `graph_modes`, CUDA graphs on a
    GPU), kept only where it measures faster. A single candidate is kept without measuring."""
    device = device or next(model.parameters()).device
    forms = tuple(forms or candidate_forms(model, device))
    modes = tuple(graph_modes(model, device) if modes is None else modes)
    if len(forms) == 1 and not modes:
        return FormChoice(forms[0])
    rates: dict[str, float] = {}
    for form in forms if len(forms) > 1 else ():
        rates[form] = _timed(measure, model, inputs, form)
    best = max(rates, key=rates.get) if rates else forms[0]
    if modes and best not in rates:
        rates[best] = _timed(measure, model, inputs, best)
    for mode in modes:
        rates[f"{best}+{mode}"] = _timed(measure, model, inputs, f"{best}+{mode}")
    torch._dynamo.reset()
    return FormChoice(max(rates, key=rates.get), rates)


def _timed(measure: Callable[[nn.Module, Any, str], float], model: nn.Module, inputs: Any, form: str) -> float:
    """``measure`` from a fresh compile; 0.0 where a CUDA-graph form cannot run here, so it is never kept."""
    torch._dynamo.reset()
    if "+" not in form:
        return round(measure(model, inputs, form), 2)
    try:
        return round(measure(model, inputs, form), 2)
    except (RuntimeError, torch._dynamo.exc.TorchDynamoException):
        return 0.0


def fast_inference(model: nn.Module, example: Any) -> tuple[CompiledInference, FormChoice]:
    """``model`` in channels-last (unless it takes a list of images), compiled in the fastest form for
    inputs like ``example``: what ``--fast`` runs for every inference command."""
    channels_last = not getattr(model, "takes_images", False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        example = example.contiguous(memory_format=torch.channels_last)
    choice = choose_form(model.eval(), example)
    return compile_for_inference(model, choice.form, channels_last), choice


# Whether a trial compile is worth making: a compile costs about COMPILE_GUESS_SECONDS and saves at most about
# LIKELY_SAVING of an eager run's time (a CPU gains ~10%, a GPU up to half), so only a run whose eager time times
# the saving reaches the guess is tried (600 s on a CPU, 60 s on a GPU). Whether the compiled form is then kept is
# measured: its compile time against the time its faster steps save over the run.
COMPILE_GUESS_SECONDS = 60.0
LIKELY_SAVING = {"cuda": 0.5}
CPU_SAVING = 0.1
WARM_UP_STEPS, TRIAL_STEPS = 2, 2  # a training form's trial: untimed steps (the first compiles), then timed ones


@dataclass
class TrainingForm:
    """How training steps run: bf16 autocast or fp32, channels-last image batches, compiled or eager; with
    the images per second each measured candidate reached (empty: chosen without measuring)."""

    precision: str = "fp32"
    channels_last: bool = False
    compiled: bool = False
    images_per_s: dict[str, float] = field(default_factory=dict)
    compile_mode: str | None = None  # one of GRAPH_MODES: compiled steps replayed as CUDA graphs
    compile_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        words = ["fp32" if self.precision == "fp32" else f"{self.precision}-autocast"]
        words += ["channels-last"] * self.channels_last + ["compiled"] * self.compiled
        return "+".join(words + [self.compile_mode] * bool(self.compiled and self.compile_mode))

    def mark_step(self) -> None:
        """Before each forward pass of a CUDA-graph form: a new step, whose replay may reuse the last one's buffers."""
        if self.compiled and self.compile_mode:
            torch.compiler.cudagraph_mark_step_begin()

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
        """Outputs as float32, so losses and metrics see what they see in fp32 training; a CUDA graph's
        copied out, as its next replay overwrites them."""
        if self.compiled and self.compile_mode:
            value = torch.utils._pytree.tree_map(lambda t: t.clone() if torch.is_tensor(t) else t, value)
        return value if self.precision == "fp32" else _as_float32(value)

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.name, "precision": self.precision, "channels_last": self.channels_last,
                "compiled": self.compiled, "compile_mode": self.compile_mode, "images_per_s": dict(self.images_per_s),
                "compile_seconds": dict(self.compile_seconds)}


def training_candidates(model: nn.Module, device: torch.device) -> list[TrainingForm]:
    """The eager forms worth timing for training ``model`` here: channels-last for image batches, fp32 and,
    where the hardware has it, bf16 autocast."""
    channels_last = not getattr(model, "takes_images", False)
    precisions = ("fp32", "bf16") if native_bf16(device) else ("fp32",)
    return [TrainingForm(precision, channels_last) for precision in precisions]


@dataclass(frozen=True)
class Measured:
    """What a training form's trial found: images per second, and the seconds its first step took beyond a
    timed one (a compiled form's compile time)."""

    images_per_s: float
    compile_seconds: float = 0.0


def compiled_candidates(model: nn.Module, device: torch.device, eager: TrainingForm) -> list[TrainingForm]:
    """``eager`` compiled: by default, and on a GPU in the CUDA-graph modes (`graph_modes`)."""
    modes = (None, *graph_modes(model, device))
    return [TrainingForm(eager.precision, eager.channels_last, compiled=True, compile_mode=mode) for mode in modes]


def worth_trying_compile(device: torch.device, eager_seconds: float) -> bool:
    """A trial compile only where the run could repay it (see `COMPILE_GUESS_SECONDS`)."""
    return eager_seconds * LIKELY_SAVING.get(device.type, CPU_SAVING) >= COMPILE_GUESS_SECONDS


def choose_training_form(model: nn.Module, device: torch.device, measure: Callable[[TrainingForm], Any], *,
                         images_planned: int = 0, may_compile: bool = True,
                         agree: Callable[[list[float]], list[float]] | None = None) -> TrainingForm:
    """The fastest training form for ``model``: ``measure(form)`` gives a form's images per second, or a
    `Measured` (a candidate that fails to run is left out). The eager candidates are always measured; when
    ``may_compile`` and `worth_trying_compile`, the fastest is measured compiled too (on a GPU also with CUDA
    graphs), and a compiled form is kept only if the time it saves over ``images_planned`` images exceeds
    its measured compile time, the one saving most. ``agree`` lets several processes settle on one choice
    (e.g. rates summed over processes)."""
    candidates = training_candidates(model, device)
    trials = [_trial(measure, form) for form in candidates]
    rates = [trial.images_per_s for trial in trials]
    rates = agree(rates) if agree else rates
    best = max(range(len(candidates)), key=lambda i: rates[i])
    chosen, eager_rate = candidates[best], rates[best]
    measured = {form.name: round(rate, 2) for form, rate in zip(candidates, rates) if rate > 0}
    compile_seconds: dict[str, float] = {}
    if may_compile and eager_rate > 0 and worth_trying_compile(device, images_planned / eager_rate):
        saving = 0.0
        for compiled in compiled_candidates(model, device, chosen):
            trial = _trial(measure, compiled)
            rate = agree([trial.images_per_s])[0] if agree else trial.images_per_s
            if rate <= 0:
                continue
            measured[compiled.name], compile_seconds[compiled.name] = round(rate, 2), round(trial.compile_seconds, 2)
            net = images_planned * (1 / eager_rate - 1 / rate) - trial.compile_seconds
            if net > saving:
                chosen, saving = compiled, net
    chosen.images_per_s, chosen.compile_seconds = measured, compile_seconds
    return chosen


def _trial(measure: Callable[[TrainingForm], Any], form: TrainingForm) -> Measured:
    """``measure(form)`` as a `Measured`; 0 images per second where this form cannot run here (an operation
    without bf16, a compile failure)."""
    try:
        found = measure(form)
    except (RuntimeError, NotImplementedError, TypeError, torch._dynamo.exc.TorchDynamoException):
        torch._dynamo.reset()
        return Measured(0.0)
    return found if isinstance(found, Measured) else Measured(float(found))
