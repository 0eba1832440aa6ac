"""Shipping a model out of zoo: one ONNX or ``torch.export`` (.pt2) file a runtime can run without zoo.

The exported graph takes a batch of images of any batch size (``image``: N x C x H x W, normalised) and
gives one named output per head (``cls10``; a head with several outputs gives ``agegender.age``,
``agegender.gender``). What a runtime needs to feed it (input size, mean, std) and to read it (labels,
output names) travels in the file's metadata under the key ``zoo`` as JSON, taken from the model file.
``check`` runs the exported bytes (onnxruntime, or torch.export.load) on random batches of sizes other
than the one traced, and compares with the model, before anything is written. Writing is atomic and
never replaces a file unless forced.
"""
from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo._core.saving import metadata_for
from zoo._registry.registry import default_registry
from zoo._runtime.devices import choose_device
from zoo._runtime.opening import open_model
from zoo._version import __version__
from zoo.errors import ZooError
from zoo.files import atomic_write_bytes, check_new_file
from zoo.inference import quantize as _quantize

if TYPE_CHECKING:
    import torch
    from torch import nn

    from zoo._core.model import ZooModel
    from zoo._registry.registry import Registry

FORMATS = {".onnx": "onnx", ".pt2": "pt2"}
FORMAT = "zoo.export/1"
METADATA_KEY = "zoo"
INPUT_NAME = "image"
TOLERANCE = 1e-4  # fp32: the exported graph computes what the model computes
TRACE_BATCH, CHECK_BATCHES = 2, (1, 3)  # checked at batch sizes other than the traced one: the batch is dynamic
MAX_BATCH = 4096
EXTRA = "pip install 'zoo[export]'"


@dataclass
class ExportReport:
    """What `export` wrote and, with ``check``, how far the exported file's answers are from the model's."""

    path: str
    format: str
    spec: str
    outputs: list[str]
    input_size: list[int]
    int8: bool = False
    bytes: int = 0
    check: dict[str, Any] | None = None
    calibration_images: int = 0
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("metadata")
        return data


def check_export_path(path: str | os.PathLike[str], force: bool = False) -> tuple[Path, str]:
    """Where an export may be written, and its format from the suffix; refused before any work is done."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ZooError(f"output {path} must end in .onnx (ONNX) or .pt2 (torch.export)")
    return check_new_file(path, force, path.suffix), kind


def _require(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ZooError(f"{what} needs the package {module}, which is not installed: {EXTRA}")


def output_names(model: ZooModel, outputs: Any) -> list[str]:
    """One name per output tensor: the head's key, with ``.field`` for each field of a head giving several."""
    import torch

    names: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if torch.is_tensor(value):
            names.append(prefix)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(f"{prefix}.{index}", item)
        else:
            raise ZooError(f"head {prefix.split('.')[0]} returns {type(value).__name__}, which cannot be exported")

    for key, value in model.by_head(outputs).items():
        walk(key, value)
    return names


def flat_outputs(model: ZooModel, outputs: Any) -> tuple[torch.Tensor, ...]:
    """The model's outputs as one flat tuple, in the order `output_names` names them."""
    import torch

    flat: list[torch.Tensor] = []

    def walk(value: Any) -> None:
        if torch.is_tensor(value):
            flat.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        else:
            for item in value:
                walk(item)

    for value in model.by_head(outputs).values():
        walk(value)
    return tuple(flat)


def _flat_module(model: ZooModel) -> nn.Module:
    """The model as a graph-friendly module: a batch in, a tuple of tensors out."""
    from torch import nn

    class Flat(nn.Module):
        def __init__(self, inner: ZooModel) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, image):
            return flat_outputs(self.inner, self.inner(image))

    return Flat(model).eval()


def _refuse_detection(model: ZooModel) -> None:
    if model.takes_images:
        head = next(iter(model.heads))
        raise ZooError(f"{model.spec} cannot be exported: detection head {head} takes a list of images of any size "
                       "and returns a different number of boxes per image, which neither ONNX nor torch.export "
                       "holds as one fixed graph here; export classification, key point or age-gender models, "
                       "or run detection with zoo predict")


def example_batch(model: ZooModel, batch: int, seed: int = 0) -> torch.Tensor:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *model.backbone.input_size, generator=generator)


def _dynamic_batch() -> Any:
    import torch

    return ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def find_unexportable_part(model: ZooModel, example: torch.Tensor) -> tuple[str, str] | None:
    """The first part that torch.export cannot trace on its own: ("backbone NAME" or "head KEY", why)."""
    import torch
    from torch import nn

    class Stages(nn.Module):
        def __init__(self, backbone: nn.Module) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, image):
            features = self.backbone(image)
            return tuple(features.stages.values()) + (features.pooled,)

    class OneHead(nn.Module):
        def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
            super().__init__()
            self.backbone, self.head = backbone, head

        def forward(self, image):
            return self.head(self.backbone(image))

    probes = [(f"backbone {type(model.backbone).__name__}", Stages(model.backbone))]
    probes += [(f"head {key}", OneHead(model.backbone, head)) for key, head in model.heads.items()]
    for name, probe in probes:
        try:
            torch.export.export(probe.eval(), (example,))
        except Exception as exc:  # noqa: BLE001 - any failure names the part
            return name, _first_line(exc)
    return None


def _unexportable(model: ZooModel, example: torch.Tensor, exc: BaseException, kind: str) -> ZooError:
    culprit = find_unexportable_part(model, example)
    if culprit is None:
        return ZooError(f"{model.spec} cannot be exported to {kind}: {_first_line(exc)}")
    part, why = culprit
    return ZooError(f"{model.spec} cannot be exported to {kind}: its {part} cannot be traced ({why})")


def export_metadata(model: ZooModel, names: list[str], registry: Registry, int8: bool) -> dict[str, Any]:
    """What a runtime needs beside the graph: preprocessing, labels, output names, and what the model was."""
    meta = metadata_for(model, registry)
    keep = ("spec", "freeze", "heads", "labels", "input_size", "mean", "std", "weights")
    return {"format": FORMAT, **{key: meta[key] for key in keep}, "input": INPUT_NAME, "outputs": names,
            "dynamic_batch": True, "int8": int8, "zoo_version": __version__, "torch_version": meta["torch_version"]}


# --- the two formats --------------------------------------------------------------------------------------

def _onnx_bytes(module: nn.Module, example: torch.Tensor, names: list[str], meta: dict[str, Any]) -> bytes:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), input_names=[INPUT_NAME], output_names=names,
                                    dynamic_shapes=_dynamic_batch(), dynamo=True, verbose=False)
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta, sort_keys=True)
    if proto.ByteSize() >= 2**31:
        raise ZooError("the ONNX graph would be over 2 GB, protobuf's limit for one file; export to .pt2 instead")
    return proto.SerializeToString()


def _pt2_program(module: nn.Module, example: torch.Tensor, strict: bool = False):
    import torch

    return torch.export.export(module, (example,), dynamic_shapes=_dynamic_batch(), strict=strict)


def _pt2_bytes(program: Any, meta: dict[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={f"{METADATA_KEY}.json": json.dumps(meta, sort_keys=True)})
    return buffer.getvalue()


def read_export_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``zoo`` metadata of an exported .onnx or .pt2 file."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
        if METADATA_KEY not in props:
            raise ZooError(f"{path} is an ONNX file without zoo metadata")
        return json.loads(props[METADATA_KEY])
    found = _pt2_extra_file(path, f"{METADATA_KEY}.json")
    if found is None:
        raise ZooError(f"{path} is a .pt2 file without zoo metadata")
    return json.loads(found)


def _pt2_extra_file(path: Path, name: str) -> bytes | None:
    """An extra file of a .pt2 archive (a zip: ``<archive>/extra/<name>``), read without loading the program,
    so that no kernel library it needs (int8's) has to be imported to read its metadata."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.partition("/")[2] == f"extra/{name}":
                    return archive.read(member)
    except zipfile.BadZipFile:
        raise ZooError(f"{path} is not a .pt2 file (not a zip archive)") from None
    return None


def _load_exported(kind: str, blob: bytes) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """The exported bytes loaded once by their runtime, as a function from a batch to the outputs."""
    import torch

    if kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])
        return lambda batch: [torch.from_numpy(a) for a in session.run(None, {INPUT_NAME: batch.numpy()})]
    module = torch.export.load(io.BytesIO(blob)).module()

    def run(batch: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return list(module(batch))

    return run


def check_exported(kind: str, blob: bytes, reference: nn.Module, model: ZooModel, names: list[str],
                   tolerance: float | None, device: torch.device | None = None) -> dict[str, Any]:
    """Run the exported bytes (on the CPU) and ``reference`` (on ``device``, the CPU by default) on random
    batches; the largest difference per output."""
    import torch

    device = device or torch.device("cpu")
    worst = {name: 0.0 for name in names}
    run = _load_exported(kind, blob)
    for seed, batch_size in enumerate(CHECK_BATCHES, start=1):
        batch = example_batch(model, batch_size, seed)
        got = run(batch)
        with torch.no_grad():
            expected = [out.cpu() for out in reference(batch.to(device))]
        for name, a, b in zip(names, got, expected):
            if tuple(a.shape) != tuple(b.shape):
                raise ZooError(f"check failed: output {name} is {tuple(a.shape)} in the export and "
                               f"{tuple(b.shape)} in the model at batch {batch_size}; nothing written")
            worst[name] = max(worst[name], float((a.float() - b.float()).abs().max()))
    largest = max(worst.values(), default=0.0)
    result = {"runtime": "onnxruntime" if kind == "onnx" else "torch.export.load", "batches": list(CHECK_BATCHES),
              "max_difference": largest, "by_output": worst, "tolerance": tolerance, "device": str(device)}
    if tolerance is not None and not largest <= tolerance:
        raise ZooError(f"check failed: the exported model differs from the model by up to {largest:.3g} "
                       f"(more than {tolerance:g}); nothing written")
    return result


# --- the public function ----------------------------------------------------------------------------------

def _model(source: Any, weights: Any, registry: Registry) -> ZooModel:
    from zoo._core.model import ZooModel  # deferred: it imports torch

    if isinstance(source, ZooModel):
        if weights is not None:
            raise ZooError("weights apply to a spec; this model already has its weights")
        return source
    return open_model(source, weights=weights, registry=registry, command="export", check=_refuse_detection)


def export(
    model: Any,
    path: str | os.PathLike[str],
    *,
    weights: Any = None,
    check: bool = False,
    force: bool = False,
    int8: bool = False,
    calibrate: str | os.PathLike[str] | None = None,
    device: str | None = None,
    registry: Registry | None = None,
) -> ExportReport:
    """Export a model (a ZooModel, a .safetensors model file, or a spec) to ``path`` (.onnx or .pt2).

    ``int8`` quantizes with PT2E and the x86 inductor quantizer, calibrated on the images in ``calibrate``
    (a .pt2 file; needs a CPU with VNNI or AMX). ``check`` compares the written graph with the model, run
    on ``device`` (`zoo._runtime.devices.choose_device`: auto by default); the file itself is traced on the CPU.

    >>> zoo.export("ants-bees.safetensors", "ants-bees.onnx", check=True)  # doctest: +SKIP
    """
    path, kind = check_export_path(path, force)
    if int8:
        _quantize.check_int8_request(kind, calibrate)
    elif calibrate is not None:
        raise ZooError("calibration images are for --int8; add --int8 or drop --calibrate")
    if kind == "onnx":
        _require("onnxscript", "ONNX export")
        _require("onnx", "ONNX export")
        if check:
            _require("onnxruntime", "--check of an ONNX export")
    registry = registry or default_registry()
    checked_on = choose_device(device) if check else None
    model = _model(model, weights, registry)
    _refuse_detection(model)  # a model given built (a spec or file is refused as it is loaded)
    training = model.training
    try:
        return _export_model(model.eval(), path, kind, check=checked_on, int8=int8, calibrate=calibrate,
                             registry=registry)
    finally:
        model.train(training)  # the caller's model is left in the mode it was in


def _export_model(model: ZooModel, path: Path, kind: str, *, check: torch.device | None, int8: bool,
                  calibrate: str | os.PathLike[str] | None, registry: Registry) -> ExportReport:
    import torch

    example = example_batch(model, TRACE_BATCH)
    with torch.no_grad():
        names = output_names(model, model(example))
    meta = export_metadata(model, names, registry, int8)
    module, reference, images = _flat_module(model), None, 0
    try:
        if int8:
            batches = _quantize.calibration_batches(calibrate, model)
            images = sum(len(b) for b in batches)
            module = _quantize.quantize(_pt2_program(module, example, strict=True).module(), batches)
            reference = module
        if kind == "onnx":
            blob = _onnx_bytes(module, example, names, meta)
        else:
            blob = _pt2_bytes(_pt2_program(module, example), meta)
    except ZooError:
        raise
    except Exception as exc:  # noqa: BLE001 - a tracing failure is reported as the part that caused it
        raise _unexportable(model, example, exc, "ONNX" if kind == "onnx" else "torch.export") from None
    report = ExportReport(str(path), kind, model.spec, names, list(model.backbone.input_size), int8=int8,
                          bytes=len(blob), calibration_images=images, metadata=meta)
    if check is not None:
        fp32 = copy.deepcopy(_flat_module(model)).to(check)  # the model as it runs on the device asked for
        if int8:  # the file must compute what the quantized model computes; how far that is from fp32, measured
            report.check = check_exported(kind, blob, reference, model, names, TOLERANCE)
            report.check["max_difference_vs_fp32"] = check_exported(kind, blob, fp32, model, names, None,
                                                                    check)["max_difference"]
        else:
            report.check = check_exported(kind, blob, fp32, model, names, TOLERANCE, check)
    try:
        atomic_write_bytes(path, blob)
    except OSError as exc:
        raise ZooError(f"cannot write {path}: {exc.strerror or exc}") from None
    return report
