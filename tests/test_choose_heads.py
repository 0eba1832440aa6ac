"""zoo choose for key points and age + gender: tables read as zoo train reads them, each head's metrics with
their direction (errors rank lowest first), and the zoo train command with the head."""
from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import pytest

import zoo
from cli_helpers import one_line_error, zoo as run
from drawn_data import age_gender_table, class_folders, keypoint_table
from zoo.choosing._metrics import KINDS
from zoo.choosing._ranking import Budget, best, rank

TINY = ("resnet18", "timm/test_convnext")
SMALL = ("--allow-random", "--img-size", "32", "-b", "4", "--quiet")


@pytest.fixture(scope="module")
def points(tmp_path_factory) -> Path:
    """Sixteen images of one white dot; the table gives its centre in pixels (x0, y0)."""
    return keypoint_table(tmp_path_factory.mktemp("choose-points"), 16)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """Sixteen images whose brightness is the age and the square's colour the gender."""
    return age_gender_table(tmp_path_factory.mktemp("choose-faces"), 16)


@pytest.fixture(scope="module")
def kp(module_cache, points):
    result = run("choose", str(points), *TINY, "--head", "kp1", *SMALL, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def ag(module_cache, faces):
    result = run("choose", str(faces), *TINY, "--head", "agegender", *SMALL, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _by_name(found: dict) -> dict[str, dict]:
    return {row["name"]: row for row in found["candidates"]}


def test_key_points_are_scored_in_pixels_and_the_lowest_error_is_best(kp, points):
    assert kp["head"] == "kp1" and kp["metric"] == "pixel_error" and kp["images"] == 16
    assert [(m["name"], m["higher_is_better"]) for m in kp["metrics"]] == [("pixel_error", False),
                                                                            ("knn_pixel_error", False)]
    rows = _by_name(kp)
    for row in rows.values():
        assert row["scored_images"] == 16 and "accuracy" not in row
        assert 0 < row["pixel_error"] < 32 and 0 < row["knn_pixel_error"] < 32
        assert row["measured"] == {"quality": True, "cost": True} and row["pareto"] >= 1
    resnet, convnext = rows["torchvision/resnet18"], rows["timm/test_convnext"]
    # a random ResNet's pooled features still say where the dot is; a probe of them beats guessing the mean
    assert resnet["pixel_error"] < 0.75 * resnet["constant_pixel_error"]
    assert resnet["pixel_error"] < convnext["pixel_error"]
    assert kp["best"] == "torchvision/resnet18"  # the lowest error, not the highest
    command = shlex.split(kp["command"])
    assert command[:4] == ["zoo", "train", "torchvision/resnet18+kp1", str(points)]
    assert command[-2:] == ["--val-split", "0.2"]


def test_the_key_point_table_names_its_metrics_and_ends_with_the_command(kp, points, tmp_path):
    plot = tmp_path / "kp.png"
    result = run("choose", str(points), *TINY, "--head", "kp1", *SMALL, "--plot", str(plot))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    guess = kp["candidates"][0]["constant_pixel_error"]
    assert f"16 images, head kp1, ranked by probe px (lower is better; a constant guess: {guess:.2f}); 32 px" in lines[0]
    assert lines[1].split()[:6] == ["front", "candidate", "weights", "probe", "px", "k-NN"]
    assert any("kept/kept" in line for line in lines)  # the first run's results, kept per candidate
    assert lines[-1].startswith("best within the budget: torchvision/resnet18; fine-tune it: zoo train "
                                "torchvision/resnet18+kp1 ")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_age_and_gender_rank_by_the_age_error_or_the_metric_asked(ag, faces):
    assert ag["head"] == "agegender" and ag["metric"] == "age_mae"
    for row in ag["candidates"]:
        assert 0 <= row["gender_accuracy"] <= 1 and 0 <= row["knn_gender_accuracy"] <= 1
        assert row["age_mae"] >= 0 and row["knn_age_mae"] >= 0 and row["scored_images"] == 16
    resnet = _by_name(ag)["torchvision/resnet18"]
    assert resnet["age_mae"] < 0.5 * resnet["constant_age_mae"]  # the age is drawn as brightness
    assert shlex.split(ag["command"])[2].endswith("+agegender")
    by_gender = json.loads(run("choose", str(faces), *TINY, "--head", "agegender", "--metric", "gender_accuracy",
                               *SMALL, "--json").stdout)
    assert by_gender["metric"] == "gender_accuracy" and by_gender["metrics"][0]["higher_is_better"]
    assert all(not row["measured"]["quality"] for row in by_gender["candidates"])  # the ranking is not measured
    text = run("choose", str(faces), *TINY, "--head", "agegender", *SMALL).stdout.splitlines()
    assert "head agegender, ranked by age MAE (lower is better; a constant guess: " in text[0]
    assert text[1].split()[3:8] == ["age", "MAE", "gender", "k-NN", "age"]


def test_a_validation_table_scores_its_rows_and_the_command_names_it(module_cache, points, tmp_path):
    val = keypoint_table(tmp_path / "val", 6, ".jsonl")
    choice = zoo.choose(points, "timm/test_convnext", head="kp1", val=val, allow_random=True, img_size=32,
                        batch_size=4, progress=False)
    (row,) = choice.rows
    assert row["scored_images"] == 6 and choice.images == 22
    assert choice.command.endswith(f"--img-size 32 --val {shlex.quote(str(val))}")
    command = shlex.split(choice.command)
    command[command.index("-o") + 1] = str(tmp_path / "tuned.safetensors")
    trained = run(*command[1:], "--epochs", "1", "-b", "4", "--quiet")  # the command zoo train takes as it is
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "tuned.safetensors").is_file()


def test_the_quality_kept_is_the_head_s_own(module_cache, points, tmp_path):
    """One table teaching two heads: each head's quality is measured, and kept, on its own."""
    table = tmp_path / "both.csv"
    with open(points, newline="") as source:
        rows = list(csv.DictReader(source))
    for row in rows:
        row.update(image=str(points.parent / row["image"]), age=row["x0"], gender=int(int(row["y0"]) > 24))
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for head, metric in (("kp1", "pixel_error"), ("agegender", "age_mae"), ("kp1", "pixel_error")):
        found = zoo.choose(table, "timm/test_convnext", head=head, allow_random=True, img_size=32, batch_size=4,
                           progress=False)
        (row,) = found.rows
        assert row[metric] is not None and found.head == head
    assert not row["measured"]["quality"]  # kp1 again: kept from its first run


def test_the_ranking_puts_the_lowest_error_first():
    rows = [{"name": "fast-poor", "pixel_error": 9.0, "knn_pixel_error": 9.5, "images_per_s": 100},
            {"name": "slow-close", "pixel_error": 2.0, "knn_pixel_error": 3.0, "images_per_s": 10},
            {"name": "dominated", "pixel_error": 9.5, "knn_pixel_error": 9.0, "images_per_s": 50},
            {"name": "tie-by-knn", "pixel_error": 2.0, "knn_pixel_error": 2.5, "images_per_s": 10},
            {"name": "missing", "pixel_error": None, "images_per_s": None}]
    ranked = rank([dict(row) for row in rows], Budget(), KINDS["kp"])
    assert [(r["name"], r["pareto"]) for r in ranked] == [("tie-by-knn", 1), ("fast-poor", 1), ("slow-close", 2),
                                                          ("dominated", 2), ("missing", None)]
    assert best(ranked, KINDS["kp"])["name"] == "tie-by-knn"
    assert best(rank([dict(row) for row in rows], Budget(min_img_s=20), KINDS["kp"]), KINDS["kp"])["name"] == "fast-poor"


@pytest.mark.parametrize("args, pattern", [
    (["{points}"], r"is a table: give --head, the head it teaches \(cls<N> \(classes\), kp<N> \(key points\), "
                   r"agegender\), such as --head kp5"),
    (["{points}", "--head", "agegender"], "lacks column\\(s\\) age, gender"),
    (["{points}", "--head", "kp"], "head kp needs a number of points"),
    (["{points}", "--head", "det3"], "zoo choose scores cls<N> .* not zoo/det"),
    (["{points}", "--head", "kp1+agegender"], "give one head"),
    (["{points}", "--head", "kp1", "--metric", "accuracy"], "not a metric of this head; its metrics: pixel_error, "
                                                           "knn_pixel_error"),
    (["{points}", "--head", "kp1", "--val", "{missing}"], "--val .* does not exist"),
    (["{classes}", "--head", "kp1"], "folder of classes, which teaches classification; head kp1 learns from"),
    (["{classes}", "--head", "cls5"], "has 3 classes and --head is cls5; use --head cls3"),
    (["{classes}", "--val", "{points}"], "is a folder: put its validation images in"),
    (["{few}", "--head", "kp1"], "has 3 rows; zoo choose needs at least 4"),
])
def test_bad_input_is_one_line_and_exit_2(module_cache, points, tmp_path, args, pattern):
    classes = class_folders(tmp_path / "shapes", ("blue", "red", "green"), 2, splits=("",))
    few = keypoint_table(tmp_path / "few", 3)
    names = {"points": str(points), "missing": str(tmp_path / "nope.csv"), "classes": str(classes), "few": str(few)}
    one_line_error(run("choose", *[a.format(**names) for a in args], *TINY, *SMALL), pattern)
