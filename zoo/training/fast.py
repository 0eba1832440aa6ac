"""``zoo train --fast``: the training form (`zoo._runtime.compiled.TrainingForm`) chosen by timing real training steps.

A few forward and backward passes on the run's first batch, for each candidate form (fp32 and, where the
hardware has it, bf16 autocast, both channels-last for image batches; compiled too, on a GPU also replayed as
CUDA graphs, when the run is long enough to repay a compile, kept only where the measured compile time is less
than the time the faster steps save), with the model's own loss. The model's weights, buffers (BatchNorm statistics),
gradients and the random state are put back after each, so measuring changes nothing the run then does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo._runtime.compiled import (
    TRIAL_STEPS,
    WARM_UP_STEPS,
    Measured,
    TrainingForm,
    choose_training_form,
    compile_for_training,
)
from zoo._runtime.timing import device_clock, steps_per_second
from zoo._runtime.transforms import of_model, on_device
from zoo.training.evaluation import to_device, unpack

if TYPE_CHECKING:
    import torch

    from zoo._core.model import ZooModel
    from zoo._runtime.processes import Group


def step_outputs_and_loss(model: ZooModel, forward: Any, form: TrainingForm, inputs: Any, targets: Any,
                          device: torch.device) -> tuple[Any, torch.Tensor]:
    """A training step's forward pass as ``form`` runs it (``forward``: the model, its compiled or its DDP form),
    outputs as float32, and the model's loss: what `zoo.fit` runs every step and the trial times."""
    form.mark_step()
    with form.autocast(device.type):
        outputs = forward(inputs, targets) if model.takes_images else forward(inputs)
    outputs = form.outputs(outputs)
    return outputs, model.loss(outputs, targets)


class FormTrial:
    """Times training steps of ``model`` on one batch in a given form; keeps the compiled module it made."""

    def __init__(self, model: ZooModel, batch: Any, device: torch.device) -> None:
        inputs, targets, _ = unpack(batch)
        self.model, self.device = model, device
        self.inputs, self.targets = on_device(inputs, of_model(model), device), to_device(targets, device)
        self.compiled: dict[str | None, Any] = {}  # by compile mode

    def _forward(self, form: TrainingForm) -> Any:
        if not form.compiled:
            return self.model
        if form.compile_mode not in self.compiled:
            self.compiled[form.compile_mode] = compile_for_training(self.model, form.compile_mode)
        return self.compiled[form.compile_mode]

    def _step(self, forward: Any, form: TrainingForm, inputs: Any) -> None:
        step_outputs_and_loss(self.model, forward, form, inputs, self.targets, self.device)[1].backward()

    def __call__(self, form: TrainingForm) -> Measured:
        """Images per second of a training step in ``form`` (forward, loss, backward), and the seconds its
        first step took beyond a timed one: the compile, for a compiled form."""
        import torch

        saved = {name: value.detach().clone() for name, value in self.model.state_dict().items()}
        random_state, was_training = torch.get_rng_state(), self.model.training
        self.model.train()  # as the run trains: BatchNorm on batch statistics, dropout on
        form.prepare(self.model)
        inputs, forward = form.inputs(self.inputs), self._forward(form)
        try:
            clock, step = device_clock(self.device), lambda: self._step(forward, form, inputs)
            started = clock.now()
            step()
            first = clock.now() - started
            rate = steps_per_second(step, self.device, WARM_UP_STEPS - 1, TRIAL_STEPS)
            return Measured(len(self.inputs) * rate, max(0.0, first - 1 / rate) if form.compiled else 0.0)
        finally:
            self.model.load_state_dict(saved)
            self.model.zero_grad(set_to_none=True)
            self.model.train(was_training)
            torch.set_rng_state(random_state)


def choose_form(model: ZooModel, batch: Any, device: torch.device, images_planned: int,
                group: Group | None = None) -> tuple[TrainingForm, Any]:
    """The fastest training form for ``model`` and the module to call in it (the model, or its compiled
    form); the model is left in the form's memory layout. Several processes (``group``) agree on one form
    from their summed rates and do not compile (DistributedDataParallel wraps the eager model)."""
    trial = FormTrial(model, batch, device)
    agree = (lambda rates: group.total(*rates)) if group is not None else None
    form = choose_training_form(model, device, trial, images_planned=images_planned, may_compile=group is None,
                                agree=agree)
    form.prepare(model)
    return form, (trial.compiled[form.compile_mode] if form.compiled else model)


def restore_form(model: ZooModel, recorded: dict[str, Any]) -> tuple[TrainingForm, Any]:
    """The form a resumed run chose before it stopped (from its checkpoint), so it goes on as it began."""
    form = TrainingForm(recorded["precision"], recorded["channels_last"], recorded["compiled"],
                        dict(recorded.get("images_per_s", {})), recorded.get("compile_mode"),
                        dict(recorded.get("compile_seconds", {})))
    form.prepare(model)
    return form, (compile_for_training(model, form.compile_mode) if form.compiled else model)
