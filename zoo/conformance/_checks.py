"""The checks themselves, one function per contract rule; imported only when the kit runs (it needs torch)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import default_collate

from zoo._core.build import build
from zoo._core.saving import load, save
from zoo.backbone import Backbone
from zoo.conformance._kit import (BATCH, BUILTIN_BACKBONE, SIDE, Check, ConformanceFailure, Kit, Skip, head_size,
                                  label_count, quiet, target_context)
from zoo.errors import ZooError
from zoo.head import Head
from zoo.inference.export import export
from zoo.parts import FreezePolicyPart, HeadPart


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceFailure(message)


def _same_outputs(first: Any, second: Any) -> bool:
    if isinstance(first, torch.Tensor):
        return torch.allclose(first, second, atol=1e-5)
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(_same_outputs(first[k], second[k]) for k in first)
    if isinstance(first, (list, tuple)):
        return len(first) == len(second) and all(map(_same_outputs, first, second))
    return first == second


# --- backbones ----------------------------------------------------------------------------------------------

def _smallest_side(backbone: Backbone) -> int:
    strides = [stage.stride for stage in backbone.stages if stage.stride]
    return max([32, *strides])


def _check_features(name: str, folder: Path, kit: Kit) -> None:
    model = quiet(lambda: build(f"{name}+zoo/cls2", registry=kit.registry)).eval()
    backbone = model.backbone
    _expect(isinstance(backbone, Backbone), f"build returned {type(backbone).__name__}, not a zoo.backbone.Backbone")
    _expect(bool(backbone.stages) and backbone.num_features > 0, "it declares no stages or no num_features")
    side = _smallest_side(backbone)
    with torch.no_grad():
        features = backbone(torch.rand(BATCH, 3, side, side))
    _expect(list(features.stages) == list(backbone.stage_names),
            f"features.stages {list(features.stages)} differ from its stages {list(backbone.stage_names)}")
    for stage in backbone.stages:
        out = features.stages[stage.name]
        _expect(out.shape[1] == stage.channels, f"stage {stage.name} declares {stage.channels} channels, gives "
                                                f"{out.shape[1]} at {side} px")
        if stage.stride is not None:
            _expect(out.dim() == 4 and abs(out.shape[-1] - side / stage.stride) <= 1,
                    f"stage {stage.name} declares stride {stage.stride}, gives {tuple(out.shape)} at {side} px")
    _expect(tuple(features.pooled.shape) == (BATCH, backbone.num_features),
            f"pooled is {tuple(features.pooled.shape)}, not ({BATCH}, {backbone.num_features})")


def _check_backbone_saves(name: str, folder: Path, kit: Kit) -> None:
    model = quiet(lambda: build(f"{name}+zoo/cls2", registry=kit.registry)).eval()
    path = save(model, folder / "backbone.safetensors", registry=kit.registry)
    again = load(path, registry=kit.registry).eval()
    images = torch.rand(BATCH, 3, SIDE, SIDE)
    with torch.no_grad():
        _expect(_same_outputs(model(images), again(images)), "the loaded model answers differently")


def backbone_checks(kit: Kit, name: str) -> list[Check]:
    return [
        Check(name, "features match its stages", "a backbone's features have the stages, channels and strides it "
              "declares, at its smallest size", lambda folder: _check_features(name, folder, kit)),
        Check(name, "saves and loads", "a saved model loads and answers alike",
              lambda folder: _check_backbone_saves(name, folder, kit)),
    ]


# --- heads --------------------------------------------------------------------------------------------------

def _spec(part: HeadPart, backbone: str, kit: Kit) -> str:
    return f"{backbone}+{part.qualified_name}{kit.specs.get(part.name, head_size(part))}"


def _targets(part: HeadPart, key: str, size: int | None, folder: Path, kit: Kit) -> Any:
    """A batch of targets as `zoo train` makes them: from the example row, a folder's class, or a box."""
    reader = part.targets
    if reader is None:
        raise Skip("it declares no TargetReader, so zoo train cannot read its targets")
    if part.name in kit.rows and "table" in reader.sources:
        context = target_context(part, key, size, folder)
        missing = [c for c in reader.columns_for(context) if c not in kit.rows[part.name]]
        _expect(not missing, f"the example row lacks the column(s) {', '.join(missing)} its reader names")
        return default_collate([reader.target(kit.rows[part.name], context) for _ in range(BATCH)])
    if "folders" in reader.sources:
        return torch.arange(BATCH) % max(size or 2, 2)
    if "coco" in reader.sources:
        box = {"boxes": torch.tensor([[4.0, 4.0, 40.0, 40.0]]), "labels": torch.tensor([1])}
        return [dict(box) for _ in range(BATCH)]
    raise Skip(f"give an example table row for head {part.name} (rows={{'{part.name}': {{...}}}})")


def _inputs(model: Any) -> Any:
    images = torch.rand(BATCH, 3, SIDE, SIDE)
    return list(images) if model.takes_images else images


def _check_runs(part: HeadPart, backbone: str, folder: Path, kit: Kit) -> None:
    model = quiet(lambda: build(_spec(part, backbone, kit), registry=kit.registry))
    key = next(iter(model.heads))
    _expect(isinstance(model.heads[key], Head),
            f"build returned {type(model.heads[key]).__name__}, not a zoo.head.Head")
    size = model.recipe.heads[0].ref.size if model.recipe else None
    targets = _targets(part, key, size, folder, kit)
    images = _inputs(model)
    model.train()
    loss = model.loss(model(images, targets) if model.takes_images else model(images), targets)
    _expect(loss.dim() == 0 and math.isfinite(loss.item()), f"loss is {loss!r}, not a finite scalar")
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.SGD(trainable, lr=0.1)
    loss.backward()
    optimizer.step()
    _expect(any(not torch.equal(a, p) for a, p in zip(before, trainable)), "one training step changed no parameter")
    model.eval()
    with torch.no_grad():
        outputs = model(images)
    answers = model.decode(outputs, [(SIDE, SIDE)] * BATCH)
    _expect(len(answers) == BATCH, f"decode gave {len(answers)} answers for {BATCH} images")
    for answer in answers:
        json.dumps(answer[key])
        _expect(isinstance(model.heads[key].format(answer[key]), str), "format did not return a str")
    metric = model.metric()
    metric.update(outputs, targets)
    values = metric.compute()
    _expect(all(isinstance(v, float) for v in values.values()), f"metric.compute() gave {values}, not floats")


def _check_head_saves(part: HeadPart, backbone: str, folder: Path, kit: Kit) -> None:
    model = quiet(lambda: build(_spec(part, backbone, kit), registry=kit.registry)).eval()
    key = next(iter(model.heads))
    count = label_count(part, model.recipe.heads[0].ref.size if model.recipe else None)
    names = {key: [f"name{i}" for i in range(count)]} if count else None
    path = save(model, folder / "head.safetensors", labels=names, registry=kit.registry)
    again = load(path, registry=kit.registry).eval()
    images = _inputs(model)
    with torch.no_grad():
        _expect(_same_outputs(model(images), again(images)), "the loaded model answers differently")
    if names:
        _expect(list(again.labels.get(key, [])) == names[key], "the names saved with it did not come back")


def _check_export(part: HeadPart, backbone: str, folder: Path, kit: Kit) -> None:
    model = quiet(lambda: build(_spec(part, backbone, kit), registry=kit.registry)).eval()
    try:
        export(model, folder / "head.onnx", registry=kit.registry)
    except ZooError as refused:  # saying why not is conforming
        raise Skip(f"export refused: {refused}") from None


def head_checks(kit: Kit, part: HeadPart) -> list[Check]:
    hosts = [BUILTIN_BACKBONE] + ([] if part.inputs == "images" else kit.own_backbones[:1])
    found = []
    for backbone in dict.fromkeys(hosts):
        on = f" on {backbone}"
        found += [
            Check(part.qualified_name, "forward, loss, decode, metric, format, one step" + on,
                  "a head runs forward, loss, decode, metric and format, and trains",
                  lambda folder, b=backbone: _check_runs(part, b, folder, kit)),
            Check(part.qualified_name, "saves and loads with labels" + on,
                  "a head that takes names declares HeadPart(labels=...); saved names load back",
                  lambda folder, b=backbone: _check_head_saves(part, b, folder, kit)),
        ]
    found.append(Check(part.qualified_name, "exports to ONNX or says why", "export succeeds or raises ZooError",
                       lambda folder: _check_export(part, BUILTIN_BACKBONE, folder, kit)))
    return found


# --- freeze policies ----------------------------------------------------------------------------------------

def _policy_text(part: FreezePolicyPart, stages: tuple[str, ...]) -> str:
    argument = {"none": "", "int": ":1", "stage": f":{stages[0]}"}[part.argument]
    return part.qualified_name + argument


def _frozen_model(part: FreezePolicyPart, kit: Kit) -> Any:
    backbone = (kit.own_backbones or [BUILTIN_BACKBONE])[0]
    plain = quiet(lambda: build(f"{backbone}+zoo/cls2", registry=kit.registry))
    text = _policy_text(part, plain.backbone.stage_names)
    return quiet(lambda: build(f"{backbone}+zoo/cls2", freeze=text, registry=kit.registry)), text


def _check_freezes(part: FreezePolicyPart, folder: Path, kit: Kit) -> None:
    model, text = _frozen_model(part, kit)
    frozen = set(model.frozen_parameters())
    _expect(all(p.requires_grad for p in model.heads.parameters()), "it froze a head; heads always train")
    _expect(all(name.startswith("backbone.") for name in frozen), "it froze parameters outside the backbone")
    if part.chooses == "stages":
        chosen = set(model.frozen_stages)
        for stage in model.backbone.stage_names:
            states = {p.requires_grad for p in model.backbone.stage_parameters(stage)}
            _expect(states <= {stage not in chosen}, f"{text}: stage {stage} is {'not ' * (stage in chosen)}"
                    "frozen as chosen")
    model.train()
    _expect(set(model.frozen_parameters()) == frozen, "model.train() unfroze parameters")
    for module in model.modules():
        own = list(module.parameters(recurse=False))
        _expect(not own or any(p.requires_grad for p in own) or not module.training,
                f"a module whose parameters are frozen trains after model.train(): {type(module).__name__}")


def _check_freeze_saves(part: FreezePolicyPart, folder: Path, kit: Kit) -> None:
    model, _ = _frozen_model(part, kit)
    path = save(model, folder / "frozen.safetensors", registry=kit.registry)
    again = load(path, registry=kit.registry)
    _expect(set(again.frozen_parameters()) == set(model.frozen_parameters()), "the reloaded model froze otherwise")


def freeze_checks(kit: Kit, part: FreezePolicyPart) -> list[Check]:
    return [
        Check(part.qualified_name, "freezes what it says", "a policy freezes what it selects; heads train; "
              "frozen modules stay frozen through model.train()", lambda folder: _check_freezes(part, folder, kit)),
        Check(part.qualified_name, "saves and reloads", "a frozen model reloads frozen alike",
              lambda folder: _check_freeze_saves(part, folder, kit)),
    ]
