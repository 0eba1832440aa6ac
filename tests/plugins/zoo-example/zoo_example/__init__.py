"""A third-party plugin, written only against zoo's public contract: the reference to copy.

This entry module stays light (no torch import): the builders import `zoo_example.modules` when a
model is built. It offers two backbones (one with options), a head implementing the whole
`zoo.head.Head` contract (loss, decode, metric, format) and reading its training targets (`zoo.targets`), a stage-choosing and a parameter-choosing freeze policy.
"""
from __future__ import annotations

from zoo import hookimpl
from zoo.errors import ZooError
from zoo.parts import BackbonePart, FreezePolicyPart, HeadPart, Option, PresetPart, WeightsFile
from zoo.targets import TargetReader

ZOO_CONTRACT = "1.1"  # the zoo.contract version this plugin is written against

# The weights this plugin offers, by tag; ``default`` (what ``--weights imagenet`` means) is the first, rgb_v1.
# Each tag's file lives in zoo's cache; ``gray_v1`` was trained on 48-pixel gray images, so it brings its own
# input size, mean and std.
_WEIGHTS = {"default": "tinycnn-rgb_v1.safetensors", "rgb_v1": "tinycnn-rgb_v1.safetensors",
            "gray_v1": "tinycnn-gray_v1.safetensors"}
_GRAY = {"input_size": (3, 48, 48), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}


def _tinycnn(width: int = 8, act: str = "relu"):
    from zoo_example.modules import TinyCNN

    return TinyCNN(width, act)


def _tinycnn_weights(tag: str) -> WeightsFile:
    """Where a tag's file is; never touches the network (these weights cannot be downloaded)."""
    from zoo.files import cache_dir

    if tag not in _WEIGHTS:
        raise ZooError(f"example/tinycnn has no weights {tag!r}; weights: {', '.join(_WEIGHTS)}")
    path = cache_dir() / "zoo-example" / _WEIGHTS[tag]
    return WeightsFile(f"zoo-example/{path.stem}", str(path), expected=f"put {path.name} in {path.parent}",
                       **(_GRAY if tag == "gray_v1" else {}))


def _flatnet():
    from zoo_example.modules import FlatNet

    return FlatNet()


def _multiscale(features, size, dropout: float = 0.0):
    from zoo_example.modules import MultiScaleHead

    return MultiScaleHead(features, size, dropout)


def _first(stages, count):
    return list(stages[:count])


def _stage_but_norms(stages, stage):
    """Freeze one stage's parameters except its normalisation layers', which keep adapting."""
    from zoo.freezing import is_norm, parameters_where

    chosen = [view for view in stages if view.name == stage]
    return parameters_where(chosen, lambda name, parameter, module: not is_norm(module))


@hookimpl
def zoo_backbones():
    yield BackbonePart("tinycnn", _tinycnn, "three-stage toy CNN for tests",
                       options=(Option("width", int, 8, "channels of the first stage", minimum=1),
                                Option("act", str, "relu", "activation after each convolution",
                                       choices=("relu", "gelu"))),
                       pretrained=_tinycnn_weights, weights_tags=("rgb_v1", "gray_v1"), aliases=("tiny",),
                       presets=(PresetPart("tiny-probe", "example/tinycnn+example/msp2", "all",
                                           "a linear probe on tinycnn's three stages"),))
    yield BackbonePart("flatnet", _flatnet, "one linear stage, no spatial features")


def _read_class(row, context) -> int:
    """A table row's ``label`` column: the class index `zoo train` teaches the msp head (folders need nothing)."""
    text, size = str(row["label"]).strip(), context.size
    if not text.isdigit() or int(text) >= size:
        raise ValueError(f"label {text!r} must be a class index from 0 to {size - 1}")
    return int(text)


@hookimpl
def zoo_heads():
    yield HeadPart("msp", _multiscale, "classifier over the pooled outputs of every stage",
                   size_label="classes", needs="stages", labels="classes",
                   options=(Option("dropout", float, 0.0, "dropout before the logits", minimum=0, maximum=1),),
                   targets=TargetReader(("folders", "table"), table_columns=lambda context: ("label",),
                                        read_target=_read_class))


@hookimpl
def zoo_freeze_policies():
    yield FreezePolicyPart("first", _first, "the first N stages are frozen", argument="int")
    yield FreezePolicyPart("keepnorms", _stage_but_norms, "STAGE is frozen except its norms", argument="stage",
                           chooses="parameters")
