"""`zoo predict`: images of any size and mode, answers per head, skipped bad files, drawn PNGs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageDraw

import zoo
from zoo._core.images import open_image, to_rgb
from zoo.cli import cli
from zoo.drawing import PALETTE


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Images drawn with PIL in every mode zoo must read, and files it must skip."""
    root = tmp_path_factory.mktemp("images")
    photo = Image.new("RGB", (120, 90), (40, 90, 160))
    ImageDraw.Draw(photo).ellipse((30, 20, 90, 80), fill=(240, 200, 30))
    photo.save(root / "photo.jpg", quality=95)
    Image.new("L", (64, 48), 128).save(root / "gray.png")
    Image.new("RGBA", (50, 40), (255, 0, 0, 0)).save(root / "clear.png")
    palette = Image.new("P", (40, 40), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette.save(root / "palette.gif")
    Image.fromarray(np.full((40, 60), 65535, dtype=np.uint16)).save(root / "deep.png")
    Image.new("CMYK", (48, 48), (0, 255, 255, 0)).save(root / "print.jpg")
    Image.new("RGB", (16, 12), (9, 9, 9)).save(root / "tiny.png")
    (root / "notes.jpg").write_text("not an image")
    data = (root / "photo.jpg").read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 2])
    return root


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    paths = {}
    for name, spec, labels in [
        ("cls", "resnet18+cls3", ["ant", "bee", "cat"]),
        ("multi", "resnet18+cls3+kp4+agegender", {"cls3": ["ant", "bee", "cat"]}),
        ("det", "resnet18+det3:min_size=128,max_size=256,score_thresh=0.0", None),
    ]:
        paths[name] = zoo.save(zoo.build(spec), root / f"{name}.safetensors", labels=labels)
    return paths


def predict(*args):
    return CliRunner().invoke(cli, ["predict", *map(str, args)])


def test_every_mode_becomes_8_bit_rgb(folder):
    assert open_image(folder / "gray.png").getpixel((0, 0)) == (128, 128, 128)
    assert open_image(folder / "clear.png").getpixel((0, 0)) == (255, 255, 255)  # transparent: over white
    assert open_image(folder / "palette.gif").getpixel((0, 0)) == (10, 200, 30)
    assert open_image(folder / "deep.png").getpixel((0, 0)) == (255, 255, 255)  # 16-bit white stays white
    assert open_image(folder / "print.jpg").mode == "RGB"
    assert to_rgb(Image.new("LA", (2, 2), (0, 255))).getpixel((0, 0)) == (0, 0, 0)


def test_a_photo_is_turned_upright_by_its_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to view
    Image.new("RGB", (80, 40), (0, 128, 0)).save(tmp_path / "turned.jpg", exif=exif)
    assert open_image(tmp_path / "turned.jpg").size == (40, 80)


def test_images_are_prepared_with_the_backbones_size_mean_and_std(folder):
    image = Image.new("RGB", (300, 120), (51, 51, 51))  # 0.2 in [0, 1]
    resnet = zoo.build("resnet18+cls2")
    tensor = zoo.transforms(resnet)(image)
    assert tensor.shape == (3, 224, 224)
    expected = (0.2 - torch.tensor(resnet.backbone.mean)) / torch.tensor(resnet.backbone.std)
    torch.testing.assert_close(tensor[:, 100, 100], expected, atol=1e-3, rtol=0)
    vit = zoo.build("timm/vit_tiny_patch16_224+cls2")
    assert vit.backbone.mean == (0.5, 0.5, 0.5)
    torch.testing.assert_close(zoo.transforms(vit)(image)[:, 0, 0], torch.full((3,), -0.6), atol=1e-3, rtol=0)


def test_classification_gives_top_k_labels_from_the_model_file(folder, artifacts):
    result = predict(artifacts["cls"], folder / "photo.jpg", folder / "gray.png", "--top-k", "2", "--json")
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)
    assert [a["image"] for a in answers] == [str(folder / "photo.jpg"), str(folder / "gray.png")]
    top = answers[0]["outputs"]["cls3"]["top_k"]
    assert len(top) == 2 and {t["label"] for t in top} <= {"ant", "bee", "cat"}
    model = zoo.load(artifacts["cls"]).eval()  # the same answer as the model on the prepared image
    with torch.no_grad():
        probabilities = model(zoo.transforms(model)(open_image(folder / "photo.jpg"))[None]).softmax(1)[0]
    assert top[0]["index"] == int(probabilities.argmax())
    assert top[0]["probability"] == pytest.approx(float(probabilities.max()), abs=1e-4)


def test_every_head_answers_for_a_multi_task_model(folder, artifacts):
    result = predict(artifacts["multi"], folder / "photo.jpg")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{folder / 'photo.jpg'} (120x90)"
    assert lines[1].startswith("  cls3: ") and lines[2].startswith("  kp4: (")
    assert lines[3].startswith("  agegender: age ") and ("female (" in lines[3] or "male (" in lines[3])


def test_unreadable_files_are_skipped_with_a_warning_and_the_rest_predicted(folder, artifacts):
    images = ["notes.jpg", "photo.jpg", "cut.jpg", "tiny.png", "palette.gif", "print.jpg", "clear.png", "deep.png"]
    with pytest.warns(zoo.ZooWarning) as caught:
        result = predict(artifacts["cls"], *(folder / name for name in images), "--json")
    assert result.exit_code == 1
    messages = [str(w.message) for w in caught]
    assert any("notes.jpg: not an image PIL can read; skipped" in m for m in messages)
    assert any("cut.jpg: damaged or truncated image" in m for m in messages)
    assert not any("tiny.png" in m for m in messages)  # resized like any other, as train and eval do
    answers = {a["image"].rsplit("/", 1)[-1]: a for a in json.loads(result.stdout)}
    assert {name for name, a in answers.items() if "error" in a} == {"notes.jpg", "cut.jpg"}
    assert all("outputs" in answers[name]
               for name in ("photo.jpg", "tiny.png", "palette.gif", "print.jpg", "clear.png", "deep.png"))


def test_the_cli_warns_on_stderr_and_exits_1(folder, artifacts, run_zoo):
    result = run_zoo("predict", str(artifacts["cls"]), str(folder / "notes.jpg"), str(folder / "photo.jpg"))
    assert result.returncode == 1
    assert f"zoo: warning: {folder / 'notes.jpg'}: not an image PIL can read; skipped" in result.stderr.splitlines()
    assert result.stdout.startswith(f"{folder / 'photo.jpg'} (120x90)")
    assert "Traceback" not in result.stderr


def test_detection_keeps_boxes_above_the_threshold_and_draws_them(folder, artifacts, tmp_path):
    low = json.loads(predict(artifacts["det"], folder / "photo.jpg", "--threshold", "0", "--json").stdout)
    scores = [o["score"] for o in low[0]["outputs"]["det3"]["objects"]]
    assert scores and all(0 <= s <= 1 for s in scores)
    cut = sorted(scores)[len(scores) // 2]
    result = predict(artifacts["det"], folder / "photo.jpg", "--threshold", str(cut), "--json", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)[0]
    objects = answer["outputs"]["det3"]["objects"]
    assert objects and all(o["score"] >= cut for o in objects) and len(objects) < len(scores)
    assert answer["drawn"] == str(tmp_path / "photo.png")
    drawn = Image.open(tmp_path / "photo.png")
    assert drawn.size == (120, 90) and drawn.mode == "RGB"
    best = max(objects, key=lambda o: o["score"])
    x1, y1, x2, y2 = (round(v) for v in best["box"])
    edge = drawn.getpixel((min(max(x1, 0), 119), min(max((y1 + y2) // 2, 0), 89)))
    assert edge == PALETTE[best["index"] % len(PALETTE)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]  # atomic: no temporary file left


def test_key_points_are_marked_on_the_drawn_image(folder, artifacts, tmp_path):
    result = predict(artifacts["multi"], folder / "photo.jpg", folder / "gray.png", "--json", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gray.png", "photo.png"]
    drawn = Image.open(tmp_path / "gray.png")
    x, y = answers[1]["outputs"]["kp4"]["keypoints"][-1]
    assert 0 <= x <= 64 and 0 <= y <= 48
    assert drawn.getpixel((int(x), int(y))) == PALETTE[1]  # the dot's colour, on a gray image


def test_a_spec_with_weights_and_labels_from_a_file(folder, tmp_path):
    torch.manual_seed(0)
    state = tmp_path / "resnet18.pth"
    torch.save(zoo.build("resnet18+cls2").state_dict(), state)
    names = tmp_path / "names.txt"
    names.write_text("ant\nbee\n")
    result = predict("resnet18+cls2", folder / "photo.jpg", "--weights", state, "--labels", names, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["outputs"]["cls2"]["label"] in ("ant", "bee")


def test_a_spec_without_weights_warns_that_its_answers_mean_nothing(folder):
    with pytest.warns(zoo.ZooWarning, match="freshly initialised weights"):
        assert predict("resnet18+agegender", folder / "gray.png").exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["missing.safetensors", "IMG"], "model file missing.safetensors does not exist"),
    (["MODEL", "missing.jpg"], "missing.jpg: no such file or folder"),
    (["MODEL", "IMG", "--labels", "cls3=NAMES"], "--labels cls3=NAMES: no head 'cls3'; heads: cls3, kp4, agegender"),
    (["MODEL", "IMG", "--labels", "NAMES"], "the model has heads cls3, kp4, agegender; write HEAD=FILE"),
    (["MODEL", "IMG", "--out", "IMG"], "is a file; give a folder"),
    (["MODEL", "IMG", "--threshold", "2"], "Invalid value for '--threshold'"),
])
def test_mistakes_are_one_line_and_exit_2(folder, artifacts, tmp_path, args, message):
    names = tmp_path / "names.txt"
    names.write_text("a\nb\n")
    replace = {"MODEL": str(artifacts["multi"]), "IMG": str(folder / "photo.jpg"), "NAMES": str(names)}
    args = [replace.get(a, a).replace("cls3=NAMES", f"cls3={names}") for a in args]
    if "cls3=" in " ".join(args):
        args = [a.replace("cls3=", "cls9=") for a in args]
        message = message.replace("cls3=NAMES", f"cls9={names}").replace("'cls3'", "'cls9'")
    result = predict(*args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: ") and message in lines[0]


def test_the_python_api_predicts_pil_images(artifacts):
    model = zoo.load(artifacts["cls"])
    results = zoo.predict(model, [Image.new("RGB", (64, 64), (200, 10, 10))], top_k=1)
    assert results[0].image == "image 0" and results[0].outputs["cls3"]["label"] in ("ant", "bee", "cat")


def test_text_is_black_on_light_colours_and_white_on_dark_ones():
    from zoo.drawing import text_color

    assert text_color((255, 255, 255)) == (0, 0, 0) and text_color((8, 48, 107)) == (255, 255, 255)
    assert text_color((210, 245, 60)) == (0, 0, 0) and text_color((145, 30, 180)) == (255, 255, 255)


def test_confusion_matrix_numbers_take_the_colour_their_cell_needs(monkeypatch):
    from matplotlib.axes import Axes

    from zoo.training.evaluation import confusion_png

    written = {}
    original = Axes.text

    def record(self, x, y, s, *args, **kwargs):
        written[s] = tuple(kwargs.get("color", (0, 0, 0)))
        return original(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(Axes, "text", record)
    png = confusion_png({"confusion_matrix": [[90, 1], [2, 40]], "classes": ["ant", "bee"]}, "cls2")
    assert png[:4] == b"\x89PNG"
    assert written["90"] == (1, 1, 1) and written["1"] == (0, 0, 0) and written["2"] == (0, 0, 0)
