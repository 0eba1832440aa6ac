"""A backbone that offers pretrained weights (``pretrained=``) under no ``weights_tags`` would show no weights in
`zoo info` and `zoo list --pretrained`: zoo says so when the plugin registers, in `zoo plugins` and in `zoo info`."""
from __future__ import annotations

import types
from dataclasses import replace

import pytest

from zoo import hookimpl
from zoo._core.info import backbone_info
from zoo.cli._format import format_info, format_plugins
from zoo.errors import ZooWarning
from zoo.testing import isolated_registry

RULE = r"backbone untagged/net has pretrained= but no weights_tags.*declare BackbonePart\(weights_tags="


def _plugin(tags: tuple[str, ...]) -> types.ModuleType:
    """resnet18 from the built-in plugin, renamed, with its pretrained weights under ``tags``."""
    resnet = isolated_registry().entry("backbone", "resnet18").part
    module = types.ModuleType("untagged_plugin")
    module.ZOO_CONTRACT = "1.1"
    module.zoo_backbones = hookimpl(lambda: [replace(resnet, name="net", namespace="", aliases=(), presets=(),
                                                     weights_tags=tags)])
    return module


def test_weights_without_tags_warn_at_registration_and_show_in_zoo_plugins():
    with pytest.warns(ZooWarning, match=RULE):
        registry = isolated_registry(untagged=_plugin(()))
    record = next(r for r in registry.plugins if r.name == "untagged")
    assert "has pretrained= but no weights_tags" in record.note
    assert "no weights_tags" in format_plugins([r.as_dict() for r in registry.plugins])


def test_zoo_info_flags_weights_without_tags_and_not_tagged_ones(recwarn):
    untagged = isolated_registry(untagged=_plugin(()))
    data = backbone_info("untagged/net", untagged)
    assert data["weights"] == [] and "no weights_tags" in data["weights_warning"]
    assert "warning: backbone untagged/net has pretrained= but no weights_tags" in format_info(data)
    tagged = backbone_info("untagged/net", isolated_registry(untagged=_plugin(("default",))))
    assert "weights_warning" not in tagged and [w["tag"] for w in tagged["weights"]] == ["default"]
