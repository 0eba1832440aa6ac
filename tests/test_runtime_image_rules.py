"""One rule for the images predict, train and eval read: any size is resized first, only an unreadable file is
skipped, and the unreadable ones are named; files in natural order; a missing path is an error up front."""
from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image, ImageDraw

import zoo
from tests.cli_helpers import one_line_error, zoo as run_cli
from zoo._core.images import name_few, natural_key, unreadable
from zoo._runtime.data import Skipped, image_files

ODD_SIZES = {"dot.png": (1, 1), "small.png": (20, 20), "strip.png": (4000, 30)}


def _draw(path, size, colour):
    image = Image.new("RGB", size, (120, 120, 120))
    ImageDraw.Draw(image).rectangle([0, 0, size[0] // 2, size[1] // 2], fill=colour)
    image.save(path)


@pytest.fixture(scope="module")
def odd_folders(tmp_path_factory):
    """train/ and val/ class folders whose images include 1x1, 20x20 and 4000x30 ones."""
    root = tmp_path_factory.mktemp("odd")
    for split in ("train", "val"):
        for name, colour in (("blue", (30, 30, 220)), ("red", (220, 30, 30))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                _draw(folder / f"{i}.png", (40, 40), colour)
            for file, size in ODD_SIZES.items():
                _draw(folder / file, size, colour)
    return root


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return zoo.save(zoo.build("resnet18+cls2"), tmp_path_factory.mktemp("model") / "m.safetensors",
                    labels=["blue", "red"])


def test_predict_answers_images_smaller_than_the_backbones_stride(odd_folders, model_file):
    files = [odd_folders / "val" / "red" / name for name in ODD_SIZES]
    results = zoo.predict(model_file, files)
    assert [r.error for r in results] == [None, None, None]
    assert [(r.width, r.height) for r in results] == list(ODD_SIZES.values())
    result = run_cli("predict", str(model_file), *map(str, files), "--json")
    assert result.exit_code == 0, result.output
    assert all("outputs" in answer for answer in json.loads(result.stdout))


def test_train_and_eval_read_the_same_odd_sized_images(odd_folders, model_file):
    trained = zoo.fit("resnet18+cls2", odd_folders, epochs=1, batch_size=4, img_size=32)
    assert trained.history[0]["skipped"] == 0
    found = zoo.evaluate(model_file, odd_folders, batch_size=4)
    assert found["images"] == 2 * (3 + len(ODD_SIZES)) and found["skipped"] == 0


@pytest.fixture
def with_bad_files(odd_folders, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(odd_folders, root)
    for i in range(5):
        (root / "val" / "red" / f"bad{i}.png").write_text("not an image")
    return root


def test_eval_names_the_first_unreadable_images_and_counts_the_rest(with_bad_files, model_file):
    with pytest.raises(zoo.ZooError) as caught:
        zoo.evaluate(model_file, with_bad_files, batch_size=4)
    message = str(caught.value)
    assert "5 of 17 images of" in message and "could not be read" in message
    assert "bad0.png, " in message and "bad2.png and 2 more" in message and "bad3.png" not in message


def test_train_names_unreadable_images_in_its_error(with_bad_files):
    for i in range(5):
        (with_bad_files / "train" / "blue" / f"bad{i}.png").write_text("not an image")
    with pytest.raises(zoo.ZooError, match=r"5 of 17 images of .* could not be read: .*bad0\.png.* and 2 more"):
        zoo.fit("resnet18+cls2", with_bad_files, epochs=1, batch_size=8, img_size=32)


def test_a_few_unreadable_images_are_named_in_the_epoch_line_and_the_eval_summary(odd_folders, model_file, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(odd_folders, root)
    for split in ("train", "val"):
        (root / split / "blue" / "0.png").write_text("broken")
    result = run_cli("train", "resnet18+cls2", str(root), "-o", str(tmp_path / "m.safetensors"), "--epochs", "1",
                     "-b", "4", "--img-size", "32")
    assert result.exit_code == 0, result.output
    assert f"1 unreadable skipped: {root / 'train' / 'blue' / '0.png'}" in result.output
    result = run_cli("eval", str(model_file), str(root))
    assert result.exit_code == 0, result.output
    assert f"(1 unreadable skipped: {root / 'val' / 'blue' / '0.png'})" in result.stdout


def test_predict_warns_one_by_one_then_names_the_first_few_of_many_unreadable(tmp_path, model_file):
    for i in range(5):
        (tmp_path / f"bad{i}.jpg").write_text("no")
    _draw(tmp_path / "good.png", (40, 40), (1, 2, 3))
    with pytest.warns(zoo.ZooWarning) as caught:
        results = zoo.predict(model_file, [tmp_path / f"bad{i}.jpg" for i in range(5)] + [tmp_path / "good.png"])
    messages = [str(w.message) for w in caught]
    assert sum("not an image PIL can read; skipped" in m for m in messages) == 3
    assert any(m.startswith("5 of 6 images could not be read: ") and m.endswith("bad2.jpg and 2 more; skipped")
               for m in messages)
    assert results[-1].outputs is not None


def test_unreadable_wording_is_shared():
    assert name_few(["a", "b"]) == "a, b"
    assert name_few(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
    assert name_few(["a"], count=4) == "a and 3 more"
    assert unreadable(1, 6, ["x.jpg"], "photos") == "1 of 6 images of photos could not be read: x.jpg"
    total = 0 + Skipped(1, ["a"]) + Skipped(2, ["b", "c"]) + Skipped(0)
    assert total == 3 and total.names == ("a", "b", "c")


def test_files_come_in_natural_order_in_predict_and_listings(tmp_path, model_file):
    for i in (0, 1, 2, 10, 11):
        _draw(tmp_path / f"{i}.png", (32, 32), (9, 9, 9))
    expected = ["0.png", "1.png", "2.png", "10.png", "11.png"]
    assert [p.name for p in image_files(tmp_path)] == expected
    assert sorted(["b10", "B2", "a"], key=natural_key) == ["a", "B2", "b10"]
    for argument in (str(tmp_path), str(tmp_path / "*.png")):
        result = run_cli("predict", str(model_file), argument, "--json")
        assert result.exit_code == 0, result.output
        assert [a["image"].rsplit("/", 1)[-1] for a in json.loads(result.stdout)] == expected


@pytest.mark.parametrize("what", ["missing.jpg", "missing-folder/", "nothing-*.jpg"])
def test_a_named_path_that_does_not_exist_is_an_error_before_anything_runs(tmp_path, model_file, what):
    (tmp_path / "empty").mkdir()
    result = run_cli("predict", str(model_file), str(tmp_path / what))
    one_line_error(result, "no such file or folder" if "*" not in what else "no file matches")
    # before any model is built: a spec's images are checked first (a missing model FILE is named before them)
    one_line_error(run_cli("predict", "resnet18+cls2", str(tmp_path / what)), str(tmp_path))
    missing_model = run_cli("predict", "no-model.safetensors", str(tmp_path / what))
    one_line_error(missing_model, "no-model.safetensors does not exist")
    one_line_error(run_cli("predict", str(model_file), str(tmp_path / "empty")), "has no images")


@pytest.mark.parametrize("value", ["1.5", "0", "1", "-0.2"])
def test_a_val_split_outside_0_and_1_is_an_error_even_with_a_val_folder(odd_folders, tmp_path, value):
    result = run_cli("train", "resnet18+cls2", str(odd_folders), "-o", str(tmp_path / "m.safetensors"),
                     "--val-split", value, "--epochs", "1", "--img-size", "32")
    one_line_error(result, rf"--val-split.*{value}")
    assert not (tmp_path / "m.safetensors").exists()
    with pytest.raises(zoo.ZooError, match=rf"--val-split {float(value):g} must be between 0 and 1"):
        zoo.fit("resnet18+cls2", odd_folders, val_split=float(value), epochs=1)


def test_a_val_split_beside_a_val_folder_is_ignored_with_a_warning(odd_folders):
    with pytest.warns(zoo.ZooWarning, match=r"--val-split 0.2 is ignored: .* has its own val/ folder"):
        result = zoo.fit("resnet18+cls2", odd_folders, val_split=0.2, epochs=1, batch_size=4, img_size=32)
    assert result.history
