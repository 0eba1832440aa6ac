"""A third-party plugin, written only against zoo's public contract: the reference to copy.

This entry module stays light (no torch import): the builders import `zoo_example.modules` when a
model is built. It offers two backbones (one with options), a head implementing the whole
`zoo.head.Head` contract (loss, decode, metric), a stage-choosing and a parameter-choosing freeze policy.
"""
from __future__ import annotations

from zoo import hookimpl
from zoo.parts import BackbonePart, FreezePolicyPart, HeadPart, Option


def _tinycnn(width: int = 8, act: str = "relu"):
    from zoo_example.modules import TinyCNN

    return TinyCNN(width, act)


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
                                       choices=("relu", "gelu"))))
    yield BackbonePart("flatnet", _flatnet, "one linear stage, no spatial features")


@hookimpl
def zoo_heads():
    yield HeadPart("msp", _multiscale, "classifier over the pooled outputs of every stage",
                   size_label="classes", needs="stages",
                   options=(Option("dropout", float, 0.0, "dropout before the logits", minimum=0, maximum=1),))


@hookimpl
def zoo_freeze_policies():
    yield FreezePolicyPart("first", _first, "the first N stages are frozen", argument="int")
    yield FreezePolicyPart("keepnorms", _stage_but_norms, "STAGE is frozen except its norms", argument="stage",
                           chooses="parameters")
