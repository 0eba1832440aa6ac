"""zoo train --labels: names for a head whose data gives indices (a table), checked and saved with the model."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from PIL import Image

from cli_helpers import one_line_error, zoo
from drawn_data import COLORS, class_folders

NAMES = ["crimson", "navy", "grass"]


def _table(root: Path) -> Path:
    """Squares of three colours, labelled by index (the `label` column of a classification head)."""
    root.mkdir(parents=True)
    rows = []
    for index in range(12):
        name = f"{index}.png"
        Image.new("RGB", (32, 32), list(COLORS.values())[index % 3]).save(root / name)
        rows.append({"image": name, "label": index % 3})
    with open(root / "table.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "table.csv"


def _names(path: Path, names: list[str]) -> Path:
    path.write_text("\n".join(names) + "\n")
    return path


def _train(*args) -> object:
    return zoo("train", *map(str, args), "--epochs", "1", "-b", "4", "--img-size", "32", "--val-split", "0.25",
               "--quiet")


def test_labels_name_a_tables_classes_and_are_saved(tmp_path):
    table, names = _table(tmp_path / "data"), _names(tmp_path / "names.txt", NAMES)
    out = tmp_path / "m.safetensors"
    done = _train("resnet18+cls3", table, "-o", out, "--labels", names)
    assert done.exit_code == 0, done.output
    info = json.loads(zoo("info", str(out), "--json").stdout)
    assert info["labels"] == {"cls3": NAMES}
    answer = json.loads(zoo("predict", str(out), str(tmp_path / "data" / "0.png"), "--json", "--top-k", "3").stdout)
    assert {entry["label"] for entry in answer[0]["outputs"]["cls3"]["top_k"]} == set(NAMES)


def test_labels_by_head_name_the_head(tmp_path):
    table, names = _table(tmp_path / "data"), _names(tmp_path / "names.txt", NAMES)
    out = tmp_path / "m.safetensors"
    assert _train("resnet18+cls3", table, "-o", out, "--labels", f"cls3={names}").exit_code == 0
    assert json.loads(zoo("info", str(out), "--json").stdout)["labels"] == {"cls3": NAMES}


def test_labels_of_the_wrong_count_or_head_are_one_line(tmp_path):
    table = _table(tmp_path / "data")
    out = tmp_path / "m.safetensors"
    two = _names(tmp_path / "two.txt", NAMES[:2])
    one_line_error(_train("resnet18+cls3", table, "-o", out, "--labels", two),
                   r"2 names given for head cls3, which takes 3")
    one_line_error(_train("resnet18+cls3", table, "-o", out, "--labels", f"kp2={two}"), r"kp2")
    one_line_error(_train("resnet18+cls3", table, "-o", out, "--labels", tmp_path / "none.txt"), r"does not exist")
    assert not out.exists()


def test_labels_that_contradict_class_folders_are_refused(tmp_path):
    data = class_folders(tmp_path / "folders", classes=("blue", "red"), per_class=4)
    names = _names(tmp_path / "names.txt", ["cat", "dog"])
    error = one_line_error(_train("resnet18+cls2", data, "-o", tmp_path / "m.safetensors", "--labels", names),
                           r"--labels names cls2's classes cat, dog, but .* names them blue, red")
    assert "drop --labels" in error
