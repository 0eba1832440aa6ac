"""Names across plugins: built-ins keep their bare names, files and canonical forms carry qualified ones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import zoo
from zoo._modelfile.read import METADATA_KEY
from zoo._registry.registry import Registry
from zoo.errors import ZooError


@pytest.fixture
def with_rivals(contract_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """zoo-rivals and zoo-faulty visible to entry-point discovery in this process."""
    monkeypatch.syspath_prepend(str(contract_site))
    return contract_site


def _as_older_zoo_saved_it(path: Path) -> None:
    """Rewrite a saved file's metadata the way zoo wrote it before names were qualified: bare freeze policy."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as handle:
        meta = json.loads(handle.metadata()[METADATA_KEY])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    meta["freeze"] = meta["freeze"].split("/")[-1]
    for record in meta["plugins"]:
        if record["kind"] == "freeze":
            record["part"] = record["part"].split("/")[-1]
    save_file(tensors, str(path), metadata={"format": "pt", METADATA_KEY: json.dumps(meta, sort_keys=True)})


def test_freeze_policies_are_printed_and_saved_with_qualified_names(tmp_path, run_zoo, contract_site):
    out = tmp_path / "m.safetensors"
    built = run_zoo("build", "resnet18+cls2", "--freeze", "all", "-o", str(out), "--json", site=contract_site)
    assert built.returncode == 0, built.stderr
    summary = json.loads(built.stdout)
    assert (summary["spec"], summary["freeze"]) == ("torchvision/resnet18+zoo/cls2", "zoo/all")
    meta = zoo.info(str(out))
    assert meta["freeze"] == "zoo/all"
    assert {"kind": "freeze", "part": "zoo/all"}.items() <= next(r for r in meta["plugins"] if r["kind"] == "freeze").items()
    assert zoo.build("resnet18+cls2", freeze="layer4").freeze_policy == "zoo/before:layer4"


def test_a_third_party_part_named_like_a_builtin_takes_no_bare_name(with_rivals):
    registry = Registry.from_environment()
    assert registry.entry("head", "cls").part.qualified_name == "zoo/cls"
    assert registry.entry("freeze", "all").part.qualified_name == "zoo/all"
    model = zoo.build("resnet18+cls2", freeze="all", registry=registry)
    assert model.spec == "torchvision/resnet18+zoo/cls2" and model.freeze_policy == "zoo/all"
    assert model.frozen_stages == model.backbone.stage_names
    assert zoo.build("resnet18+rival/cls2", freeze="rival/all", registry=registry).frozen_stages == ()


def test_the_users_prefer_list_can_give_a_bare_name_to_a_plugin(with_rivals, tmp_path):
    mine = tmp_path / "registry.toml"
    mine.write_text('[resolve]\nprefer = ["rival", "torchvision", "timm"]\n')
    registry = Registry.from_environment(mine)
    assert registry.entry("head", "cls").part.qualified_name == "rival/cls"
    assert zoo.build("resnet18+cls2", freeze="all", registry=registry).freeze_policy == "rival/all"


def test_a_file_saved_with_a_bare_freeze_policy_still_loads_beside_a_rival(tmp_path, with_rivals):
    from zoo.testing import isolated_registry

    path = tmp_path / "old.safetensors"
    zoo.save(zoo.build("resnet18+cls2", freeze="all", registry=isolated_registry()), path,
             registry=isolated_registry())
    _as_older_zoo_saved_it(path)
    assert zoo.info(str(path))["freeze"] == "all"
    loaded = zoo.load(path, registry=Registry.from_environment())
    assert loaded.freeze_policy == "zoo/all" and loaded.frozen_stages == loaded.backbone.stage_names


def test_an_ambiguous_name_is_reported_as_ambiguous_everywhere(run_zoo, contract_site):
    for args in (["info", "twin"], ["build", "resnet18+twin2"]):
        result = run_zoo(*args, site=contract_site)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("zoo: error: head 'twin' is ambiguous: rival/twin, twin/twin"), result.stderr
        assert "unknown" not in result.stderr and "Traceback" not in result.stderr
    info = run_zoo("info", "cls", "--json", site=contract_site)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["name"] == "zoo/cls"
