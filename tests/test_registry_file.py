"""registry.toml: provider preference, aliases and presets, and a user's file overlaying them."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import zoo
from zoo._registry.catalogue import load_catalogue
from zoo._registry.registry import Registry
from zoo.cli import cli
from zoo.errors import ZooError, ZooWarning


def test_packaged_catalogue_prefers_torchvision_then_timm():
    catalogue = load_catalogue()
    assert catalogue.prefer[:2] == ("torchvision", "timm")
    assert Registry.from_environment().backbone("resnet50").qualified_name == "torchvision/resnet50"


def test_a_user_file_changes_preference_and_adds_presets_and_aliases(tmp_path, monkeypatch):
    user = tmp_path / "mine.toml"
    user.write_text(
        '[resolve]\nprefer = ["timm", "torchvision"]\n'
        '[aliases]\ntiny = "timm/convnext_atto"\n'
        '[presets.tiny-probe]\nspec = "tiny+cls3"\nfreeze = "all"\ndescription = "linear probe"\n'
    )
    registry = Registry.from_environment(user)
    assert registry.backbone("resnet50").qualified_name == "timm/resnet50"
    assert registry.backbone("tiny").qualified_name == "timm/convnext_atto"
    assert "resnet18-finetune" in registry.presets  # the packaged presets stay
    model = zoo.build("tiny-probe", registry=registry)
    assert model.spec == "timm/convnext_atto+zoo/cls3" and model.freeze_policy == "zoo/all"
    monkeypatch.setenv("ZOO_REGISTRY", str(user))
    assert Registry.from_environment().backbone("resnet50").qualified_name == "timm/resnet50"


def test_a_preset_builds_with_its_policy_and_an_explicit_freeze_overrides_it():
    assert zoo.build("resnet18-feature-extractor").freeze_policy == "zoo/all"
    assert zoo.build("resnet18-feature-extractor", freeze="none").freeze_policy == "zoo/none"


def test_qualified_names_always_work_and_ambiguity_without_preference_is_explained(tmp_path):
    user = tmp_path / "nopref.toml"
    user.write_text("[resolve]\nprefer = []\n")
    registry = Registry.from_environment(user)
    assert registry.backbone("torchvision/resnet50").qualified_name == "torchvision/resnet50"
    with pytest.raises(ZooError, match=r"backbone 'resnet50' is ambiguous: timm/resnet50, torchvision/resnet50; use a qualified name"):
        registry.backbone("resnet50")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[resolve]\nprefer = [", r"invalid registry file .*bad.toml, line 2: Invalid value$"),
        ("[aliases]\nr = 'x'\n\n[unknown]\nx = 1\n", r"bad.toml, line 4: unknown table \[unknown\]"),
        ("[presets.p]\nspec = 'resnet50'\n", r"bad.toml, line 1: preset p: malformed spec 'resnet50'"),
        ("[presets.p]\nspec = 'resnet50+cls2'\nfreze = 'all'\n", r"bad.toml, line 3: preset p has unknown key 'freze'"),
        ("[resolve]\nprefer = 'timm'\n", r"bad.toml, line 2: resolve.prefer must be a list"),
    ],
)
def test_an_invalid_registry_file_names_the_file_and_line(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ZooError, match=message):
        load_catalogue(bad)
    result = CliRunner().invoke(cli, ["--registry", str(bad), "list"])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("zoo: error: ")


def test_a_missing_registry_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["--registry", str(tmp_path / "nope.toml"), "list"])
    assert result.exit_code == 2
    assert result.output.strip() == f"zoo: error: registry file {tmp_path / 'nope.toml'} does not exist"


def test_a_prefer_entry_no_plugin_answers_to_warns_with_a_suggestion(tmp_path):
    user = tmp_path / "typo.toml"
    user.write_text('[resolve]\nprefer = ["tim", "torchvision"]\n')
    with pytest.warns(ZooWarning, match=rf"^{user}: \[resolve\] prefer names 'tim', which no plugin provides "
                                        r"\(did you mean timm\?\); namespaces: .*timm, torchvision"):
        Registry.from_environment(user)


def test_the_packaged_prefer_list_gives_no_warning(recwarn):
    Registry.from_environment()
    assert not [w for w in recwarn if issubclass(w.category, ZooWarning)]


def test_cli_a_misspelt_prefer_is_one_warning_line_and_listing_goes_on(tmp_path, run_zoo):
    user = tmp_path / "typo.toml"
    user.write_text('[resolve]\nprefer = ["tim"]\n')
    result = run_zoo("--registry", str(user), "list", "--kind", "freeze")
    assert result.returncode == 0 and "zoo/last" in result.stdout
    assert result.stderr.strip().splitlines() == [f"zoo: warning: {user}: [resolve] prefer names 'tim', which no "
                                                  f"plugin provides (did you mean timm?); namespaces: timm, "
                                                  f"torchvision, zoo"]


def test_overlay_presets_are_listed_as_provided_by_the_overlay_file(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text('[presets.tiny-probe]\nspec = "resnet18+cls3"\nfreeze = "all"\n'
                    '[presets.resnet18-finetune]\nspec = "resnet18+cls5"\n')
    rows = {r["name"]: r for r in Registry.from_environment(user).find(kind="preset")}
    assert rows["tiny-probe"]["provider"] == str(user)
    assert rows["resnet18-finetune"]["provider"] == str(user)  # the overlay's replaces the packaged one
    assert rows["resnet50-layer4"]["provider"] == "registry.toml"
