"""Output names: every head that names its outputs takes them, by one rule, from save, build and predict."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import cli
from zoo.errors import ZooError
from zoo.inference.predict import read_labels


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    folder = tmp_path_factory.mktemp("names")
    for count in (1, 2, 3):
        (folder / f"{count}.txt").write_text("".join(f"name{i}\n" for i in range(count)))
    return folder


@pytest.mark.parametrize("spec, count", [("resnet18+cls3", 3), ("resnet18+cls1", 2), ("resnet18+agegender", 2),
                                         ("resnet18+det3:min_size=64,max_size=64", 3)])
def test_every_head_that_names_its_outputs_takes_names_on_save_build_and_predict(spec, count, names, tmp_path):
    model = zoo.build(spec)
    key = next(iter(model.heads))
    expected = [f"name{i}" for i in range(count)]
    saved = zoo.save(model, tmp_path / "a.safetensors", labels=expected)
    assert zoo.load(saved).labels == {key: expected}
    built = CliRunner().invoke(cli, ["build", spec, "-o", str(tmp_path / "b.safetensors"), "--labels", str(names / f"{count}.txt")])
    assert built.exit_code == 0, built.output
    assert zoo.load(tmp_path / "b.safetensors").labels == {key: expected}
    assert read_labels([str(names / f"{count}.txt")], model) == {key: expected}
    wrong = names / f"{count - 1 if count > 1 else 2}.txt"
    with pytest.raises(ZooError, match=f"names given for head {key}, which takes {count}"):
        zoo.save(model, tmp_path / "c.safetensors", labels=[f"x{i}" for i in range(count + 1)])
    with pytest.raises(ZooError, match=f"which takes {count}"):
        read_labels([str(wrong)], model)


def test_cls1_takes_two_names_class_0_then_class_1(tmp_path):
    model = zoo.build("resnet18+cls1")
    with pytest.raises(ZooError, match=r"1 names given for head cls1, which takes 2 \(cls1 is binary"):
        zoo.save(model, tmp_path / "m.safetensors", labels=["dog"])


def test_heads_that_name_nothing_refuse_names(tmp_path):
    with pytest.raises(ZooError, match="has no head whose outputs take names"):
        zoo.save(zoo.build("resnet18+kp2"), tmp_path / "m.safetensors", labels=["a", "b"])
    with pytest.raises(ZooError, match="head kp2 does not name its outputs; heads that take names: cls2"):
        zoo.save(zoo.build("resnet18+cls2+kp2"), tmp_path / "m.safetensors", labels={"kp2": ["a", "b"]})


def test_a_third_party_head_declares_its_names(zoo_registry, with_plugins, tmp_path):
    import zoo_example

    registry = zoo_registry(zoo_example)
    model = zoo.build("tinycnn+msp2", registry=registry)
    saved = zoo.save(model, tmp_path / "m.safetensors", labels=["ant", "bee"], registry=registry)
    assert zoo.load(saved, registry=registry).labels == {"msp2": ["ant", "bee"]}
