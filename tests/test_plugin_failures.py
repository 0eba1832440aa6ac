"""Failures inside plugin code: one line naming the part, its plugin and distribution, exit code 2;
the traceback only with ZOO_DEBUG=1 or --debug. What builders return is checked before it is used."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import zoo
from zoo._registry.plugin_checks import PluginError
from zoo._registry.registry import Registry

FAULTY = "(plugin faulty, zoo-faulty 0.9.1)"


@pytest.fixture
def faulty_registry(contract_site: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.syspath_prepend(str(contract_site))
    return Registry.from_environment()


@pytest.mark.parametrize("args, message", [
    (["build", "needsdep+cls2"], f"backbone faulty/needsdep {FAULTY}: its builder failed: "
                                  "ModuleNotFoundError: No module named 'zoo_faulty_optional_dependency'"),
    (["info", "needsdep"], f"backbone faulty/needsdep {FAULTY}: its builder failed: ModuleNotFoundError"),
    (["build", "stageless+cls2"], f"backbone faulty/stageless {FAULTY}: the backbone declares no stages"),
    (["build", "resnet18+linear2"], f"head faulty/linear {FAULTY}: its builder returned Linear, not a zoo.head.Head"),
    (["build", "resnet18+cls2", "--freeze", "nothing"],
     f"freeze policy faulty/nothing {FAULTY}: select returned NoneType, not an iterable of stage names"),
])
def test_plugin_code_failing_is_one_line_naming_part_plugin_and_distribution(run_zoo, contract_site, args, message):
    result = run_zoo(*args, site=contract_site)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"zoo: error: {message}"), result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("zoo: error:") == 1


@pytest.mark.parametrize("debug", [["--debug"], []])
def test_the_traceback_is_behind_zoo_debug_or_the_debug_flag(run_zoo, contract_site, debug):
    result = run_zoo(*debug, "build", "needsdep+cls2", env={} if debug else {"ZOO_DEBUG": "1"}, site=contract_site)
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "zoo_faulty/parts.py" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("zoo: error: backbone faulty/needsdep")


@pytest.mark.parametrize("fault, message", [
    ("channels", "gave stage b as (2, 8, 8, 8); it declares 16 channels"),
    ("inputs", "gave Features.inputs that is not the input batch"),
    ("keys", "gave stages first, b; it declares a, b"),
    ("flat", "gave stage b as (2, 16); a stage with a stride (/4) is N, C, H, W"),
])
def test_a_backbones_first_features_are_checked_against_what_it_declares(faulty_registry, fault, message):
    model = zoo.build(f"liar:fault={fault}+cls2", registry=faulty_registry)
    with pytest.raises(PluginError, match=re.escape(f"backbone faulty/liar {FAULTY}: its forward {message}")):
        model(torch.randn(2, 3, 32, 32))


def test_features_that_keep_their_promises_are_checked_once(faulty_registry):
    model = zoo.build("halfnet+cls2", registry=faulty_registry)
    assert model.features_check is not None
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    assert model.features_check is None


def test_a_loaded_model_is_checked_too(faulty_registry, tmp_path):
    path = zoo.save(zoo.build("liar:fault=inputs+cls2", registry=faulty_registry), tmp_path / "liar.safetensors",
                    registry=faulty_registry)
    with pytest.raises(PluginError, match="not the input batch"):
        zoo.load(path, registry=faulty_registry)(torch.randn(1, 3, 32, 32))
