"""The plugin contract has a version: plugins name the one they target, zoo says when it differs, saved files
record it, and a change goes through a deprecation whose warning names the new form."""
from __future__ import annotations

import json
import re
import types
from pathlib import Path

import pytest
from safetensors import safe_open

import zoo
from zoo import contract, hookimpl
from zoo.contract import CONTRACT_VERSION, ContractDeprecation
from zoo.errors import ZooError, ZooWarning
from zoo.parts import HeadPart
from zoo.targets import TargetContext, TargetReader
from zoo.testing import isolated_registry

ROOT = Path(__file__).resolve().parent.parent


def _regression(features, size):
    import torch.nn.functional as F
    from torch import nn

    from zoo.head import Head

    class Regression(Head):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(features.num_features, size)

        def forward(self, features):
            return self.fc(features.pooled)

        def loss(self, output, target):
            return F.l1_loss(output, target)

        def decode(self, output, context):
            return [{"values": row.tolist()} for row in output]

        def metric(self):
            from zoo.metrics import SampleMean

            return SampleMean(lambda output, target: {"mae": (output - target).abs().mean(1)})

    return Regression()


def _plugin(version: str | None, **more) -> types.ModuleType:
    """A plugin with a regression head that declares no names, targeting contract ``version`` (None: unnamed)."""
    module = types.ModuleType(f"plugin_{version}")
    module.zoo_heads = hookimpl(lambda: [HeadPart("reg", _regression, "regression")])
    if version is not None:
        module.ZOO_CONTRACT = version
    module.__dict__.update(more)
    return module


def _record(registry, name: str):
    return next(r for r in registry.plugins if r.name == name)


def test_zoo_follows_semantic_versioning_and_the_changelog_lists_every_contract_change():
    assert zoo.__version__ == "0.2.0"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    section = changelog.split("## 0.2.0", 1)[1].split("\n## ", 1)[0]
    assert f"contract {CONTRACT_VERSION}" in section.lower()
    flat = re.sub(r"\s+", " ", section)
    missing = [change for change in contract.CHANGES[CONTRACT_VERSION] if change not in flat]
    assert missing == [], "CHANGELOG.md's 0.2.0 Contract section must list each change as zoo.contract.CHANGES says"


def test_the_builtin_plugins_target_this_contract_and_zoo_plugins_shows_it(run_zoo):
    done = run_zoo("plugins", "--json")
    assert done.returncode == 0, done.stderr
    builtins = [r for r in json.loads(done.stdout) if r["distribution"] == "zoo"]
    assert builtins and {r["contract"] for r in builtins} == {CONTRACT_VERSION}
    table = run_zoo("plugins").stdout
    assert "contract" in table.splitlines()[0]


def test_zoo_env_shows_the_contract_version(run_zoo):
    done = run_zoo("env", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["contract"] == CONTRACT_VERSION
    assert f"contract     {CONTRACT_VERSION}" in run_zoo("env").stdout


def test_a_plugin_for_a_newer_major_contract_is_refused_in_one_line():
    registry = isolated_registry(strict=False, future=_plugin("2.0"))
    record = _record(registry, "future")
    assert record.status == "error"
    assert record.error == (f"targets zoo contract 2.0, newer than this zoo's {CONTRACT_VERSION}; "
                            "upgrade zoo (pip install -U zoo)")
    assert "future/reg" not in registry.entries("head")


def test_a_plugin_for_a_newer_minor_contract_loads_with_a_warning():
    with pytest.warns(ZooWarning, match="plugin soon .*targets zoo contract 1.9, newer than this zoo's"):
        registry = isolated_registry(strict=False, soon=_plugin("1.9"))
    assert _record(registry, "soon").status == "ok"


def test_a_plugin_naming_no_contract_loads_and_is_told_what_changed():
    registry = isolated_registry(strict=False, old=_plugin(None))
    record = _record(registry, "old")
    assert record.status == "ok" and record.contract == "1.0"
    assert record.note.startswith(f"targets zoo contract 1.0; since then ({CONTRACT_VERSION}): ")
    assert "HeadPart(labels=...)" in record.note


def test_a_malformed_contract_version_is_a_failed_plugin_naming_the_form():
    registry = isolated_registry(strict=False, odd=_plugin("one"))
    assert _record(registry, "odd").error == "ZOO_CONTRACT must be a string 'MAJOR.MINOR' such as '1.1', not 'one'"


def test_names_for_an_undeclared_head_of_an_old_plugin_still_save_with_a_warning_naming_the_declaration(tmp_path):
    registry = isolated_registry(old=_plugin(None))
    model = zoo.build("resnet18+old/reg3", registry=registry)
    with pytest.warns(ContractDeprecation, match=r"declares none, is deprecated and stops working in zoo contract "
                                                 r"2\.0; declare HeadPart\(labels="):
        path = zoo.save(model, tmp_path / "reg.safetensors", labels={"reg3": ["x", "y", "z"]})
    assert zoo.load(path, registry=registry).labels["reg3"] == ["x", "y", "z"]


def test_names_for_an_undeclared_head_of_a_current_plugin_are_an_error_naming_the_declaration(tmp_path):
    registry = isolated_registry(new=_plugin(CONTRACT_VERSION))
    model = zoo.build("resnet18+new/reg3", registry=registry)
    with pytest.raises(ZooError, match=r"head reg3 does not name its outputs; .*declare HeadPart\(labels=\.\.\.\)"):
        zoo.save(model, tmp_path / "reg.safetensors", labels={"reg3": ["x", "y", "z"]})
    assert not (tmp_path / "reg.safetensors").exists()


def test_saved_files_record_the_contract_beside_each_plugin(tmp_path):
    registry = isolated_registry(old=_plugin(None))
    path = zoo.save(zoo.build("resnet18+old/reg2", registry=registry), tmp_path / "m.safetensors")
    with safe_open(str(path), "pt") as handle:
        plugins = json.loads(handle.metadata()["zoo"])["plugins"]
    contracts = {record["plugin"]: record["contract"] for record in plugins}
    assert contracts == {"torchvision": CONTRACT_VERSION, "old": "1.0", "freeze": CONTRACT_VERSION}


def test_the_old_target_reader_form_works_with_a_warning_naming_the_new_form():
    with pytest.warns(ContractDeprecation, match=r"TargetReader\(columns=, read=\) is deprecated .* write "
                                                 r"TargetReader\(table_columns="):
        reader = TargetReader(("table",), lambda size: [f"v{i}" for i in range(size)],
                              lambda row, size, image_size: [float(row[f"v{i}"]) * image_size[0] for i in range(size)])
    assert reader.columns(2) == ["v0", "v1"]
    assert reader.target({"v0": "1", "v1": "2"}, TargetContext(2, image_size=(10, 10))) == [10.0, 20.0]


def test_the_new_target_reader_is_told_the_head_key_options_and_table_folder(tmp_path):
    reader = TargetReader(("table",), table_columns=lambda c: [f"{c.key}_{c.options['column']}"],
                          read_target=lambda row, c: c.path(row["mask"]))
    context = TargetContext(3, "seg3", {"column": "mask"}, tmp_path, (48, 48))
    assert reader.columns_for(context) == ["seg3_mask"]
    assert reader.target({"mask": "masks/a.png"}, context) == tmp_path / "masks" / "a.png"
    assert reader.read({"mask": "/abs/a.png"}, 3, (48, 48)) == Path("/abs/a.png")  # what zoo 0.1 callers ask
