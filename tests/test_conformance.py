"""The conformance kit: the built-in plugins pass it, and a part that breaks a rule fails naming the rule."""
from __future__ import annotations

import re
import subprocess
import sys
import types

import pytest

from zoo import hookimpl
from zoo.conformance import checks, describe, run_checks
from zoo.parts import BackbonePart, FreezePolicyPart
from zoo.testing import ConformanceSuite, isolated_registry


class TestBuiltinsConform(ConformanceSuite):
    """The built-ins, as a plugin author's suite runs them (a few parts: timm alone provides hundreds)."""

    distribution = "zoo"
    parts = ("torchvision/resnet18", "zoo/cls", "zoo/kp", "zoo/agegender", "zoo/all", "zoo/norms")
    rows = {"kp": {"x0": "10", "y0": "20", "x1": "30", "y1": "40"}, "agegender": {"age": "31", "gender": "f"}}


def _lying_backbone():
    """A backbone whose stage declares 16 channels but gives 8."""
    import torch
    from torch import nn

    from zoo.backbone import Backbone, Features, Stage

    class Liar(Backbone):
        stages = (Stage("conv", ("conv",), 16, 2),)
        num_features = 8

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)

        def forward(self, x):
            out = self.conv(x)
            return Features({"conv": out}, out.mean((2, 3)), x)

    return Liar()


def _thaw_heads(stages, argument):
    return ["no-such-stage"]


def _plugin():
    module = types.ModuleType("liar_plugin")
    module.zoo_backbones = hookimpl(lambda: [BackbonePart("liar", lambda: _lying_backbone())])
    module.zoo_freeze_policies = hookimpl(lambda: [FreezePolicyPart("bogus", _thaw_heads)])
    return module


def test_a_backbone_whose_features_break_its_stages_fails_naming_the_rule():
    registry = isolated_registry(liar=_plugin())
    results = run_checks(checks("local", registry=registry, parts=("liar/liar",)))
    failed = {r.check.name: r for r in results if not r.ok}
    assert "features match its stages" in failed
    line = failed["features match its stages"].line()
    assert "liar/liar" in line and "declares 16 channels, gives 8" in line and "[rule: a backbone's features" in line


def test_a_freeze_policy_naming_no_stage_fails():
    registry = isolated_registry(liar=_plugin())
    results = run_checks(checks("local", registry=registry, parts=("liar/bogus",)))
    assert results and not any(r.ok for r in results)
    assert "select chose 'no-such-stage', not among the stages: conv" in describe(results)


def test_an_unknown_distribution_is_one_clear_error():
    from zoo.errors import ZooError

    with pytest.raises(ZooError, match="no zoo plugin comes from distribution 'zoo-nothing'; distributions: zoo"):
        checks("zoo-nothing", registry=isolated_registry())


def _pytest(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_pytest_zoo_conformance_runs_the_kit_without_a_test_file(tmp_path):
    done = _pytest("--zoo-conformance", "zoo=torchvision/resnet18,zoo/all", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"\b4 passed\b", done.stdout), done.stdout[-3000:]  # resnet18's 3 checks, the policy's 1
    listed = _pytest("--zoo-conformance", "zoo=zoo/all", "--collect-only", cwd=tmp_path).stdout
    assert "TestConformance[zoo=zoo/all]" in listed and "zoo/all" in listed


def test_pytest_zoo_conformance_on_a_distribution_not_installed_is_one_line(tmp_path):
    done = _pytest("--zoo-conformance", "zoo-nothing", cwd=tmp_path)
    assert done.returncode == 4  # pytest's usage error
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and errors[0].startswith(
        "ERROR: --zoo-conformance zoo-nothing: no zoo plugin comes from distribution 'zoo-nothing'; distributions: "
    ), done.stderr[-2000:]
