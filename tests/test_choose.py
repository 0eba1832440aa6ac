"""zoo choose: candidates measured on the user's data and machine, ranked along the accuracy/throughput front."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

import zoo
from cli_helpers import one_line_error, zoo as run
from drawn_data import class_folders
from zoo.choosing._ranking import Budget, best, rank

TINY = ("resnet18", "timm/test_convnext")
SMALL = ("--img-size", "32", "-b", "4", "--quiet")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Three classes of four drawn images, no val/: scored fold by fold."""
    return class_folders(tmp_path_factory.mktemp("choose-data") / "shapes", ("blue", "red", "green"), 4, splits=("",))


@pytest.fixture(scope="module")
def first(module_cache, data):
    result = run("choose", str(data), *TINY, "--allow-random", *SMALL, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _by_name(found: dict) -> dict[str, dict]:
    return {row["name"]: row for row in found["candidates"]}


def test_json_gives_every_candidate_its_quality_cost_and_place_on_the_front(first):
    rows = _by_name(first)
    assert set(rows) == {"torchvision/resnet18", "timm/test_convnext"}  # names resolve as zoo build resolves them
    for row in rows.values():
        assert row["status"] == "random init" and "weights not here" in row["note"]
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["knn_accuracy"] <= 1
        assert row["scored_images"] == 12  # every image scored once, by the folds
        assert row["images_per_s"] > 0 and row["latency_ms"] > 0 and row["peak_memory_mb"] >= 0
        assert row["gflops"] > 0 and row["pareto"] >= 1 and row["within_budget"]
        assert row["measured"] == {"quality": True, "cost": True} and row["feature_cache"] == "built"
    assert rows["torchvision/resnet18"]["params"] > 10 * rows["timm/test_convnext"]["params"]
    assert first["classes"] == ["blue", "green", "red"] and first["images"] == 12
    assert first["best"] in rows and first["command"].startswith("zoo train ")


def test_a_rerun_measures_nothing_new(first, data):
    again = json.loads(run("choose", str(data), *TINY, "--allow-random", *SMALL, "--json").stdout)
    for row in again["candidates"]:
        assert row["measured"] == {"quality": False, "cost": False} and row["feature_cache"] is None
        before = _by_name(first)[row["name"]]
        assert (row["accuracy"], row["images_per_s"]) == (before["accuracy"], before["images_per_s"])
    assert again["best"] == first["best"]


def test_a_wider_pattern_measures_only_the_new_candidate(first, data):
    wider = json.loads(run("choose", str(data), *TINY, "timm/test_efficientnet", "--allow-random", *SMALL,
                           "--json").stdout)
    measured = {row["name"]: row["measured"]["quality"] for row in wider["candidates"]}
    assert measured == {"torchvision/resnet18": False, "timm/test_convnext": False, "timm/test_efficientnet": True}


def test_the_table_ends_with_the_best_and_the_command_that_fine_tunes_it(first, data):
    result = run("choose", str(data), *TINY, "--allow-random", *SMALL)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[1].split()[:3] == ["front", "candidate", "weights"]
    assert any("kept/kept" in line for line in lines)
    assert lines[-1].startswith(f"best within the budget: {first['best']}; fine-tune it: zoo train ")
    assert lines[-1].endswith(f"{shlex.quote(str(data))} -o {first['best'].rsplit('/', 1)[-1]}-finetuned.safetensors "
                              "--img-size 32 --val-split 0.2")


def test_budgets_leave_candidates_out_and_the_best_is_within_them(first, data):
    small = json.loads(run("choose", str(data), *TINY, "--allow-random", *SMALL, "--max-params", "1M",
                           "--json").stdout)
    rows = _by_name(small)
    resnet = rows["torchvision/resnet18"]
    assert resnet["over_budget"] and "params > 1,000,000" in resnet["over_budget"][0]
    assert small["best"] == "timm/test_convnext" and rows["timm/test_convnext"]["within_budget"]
    text = run("choose", str(data), *TINY, "--allow-random", *SMALL, "--max-params", "1M").stdout
    assert "over budget: torchvision/resnet18 (" in text and "torchvision/resnet18" not in text.split("over budget")[0]
    none = run("choose", str(data), *TINY, "--allow-random", *SMALL, "--max-params", "1k")
    assert none.exit_code == 1 and none.stdout.strip().splitlines()[-1] == "no candidate within the budget"


def test_the_ranking_follows_the_front_and_every_budget():
    rows = [{"name": "slow-good", "accuracy": 0.9, "knn_accuracy": 0.8, "images_per_s": 10, "latency_ms": 50,
             "peak_memory_mb": 900, "params": 25e6},
            {"name": "fast-fair", "accuracy": 0.7, "knn_accuracy": 0.6, "images_per_s": 100, "latency_ms": 5,
             "peak_memory_mb": 100, "params": 2e6},
            {"name": "dominated", "accuracy": 0.6, "knn_accuracy": 0.6, "images_per_s": 50, "latency_ms": 9,
             "peak_memory_mb": 300, "params": 5e6},
            {"name": "missing", "accuracy": None, "images_per_s": None}]
    ranked = rank([dict(row) for row in rows], Budget())
    assert [(r["name"], r["pareto"]) for r in ranked] == [("slow-good", 1), ("fast-fair", 1), ("dominated", 2),
                                                          ("missing", None)]
    assert best(ranked)["name"] == "slow-good"
    for budget in (Budget(max_ms=10), Budget(min_img_s=60), Budget(max_mb=500), Budget(max_params=3e6)):
        assert best(rank([dict(row) for row in rows], budget))["name"] == "fast-fair", budget


def test_a_candidate_that_fails_is_one_row_and_the_others_go_on(first, data, tmp_path):
    saved = tmp_path / "good.safetensors"
    assert run("build", "timm/test_convnext+cls2", "-o", str(saved)).exit_code == 0
    blob = saved.read_bytes()
    cut, damaged = tmp_path / "cut.safetensors", tmp_path / "damaged.safetensors"
    cut.write_bytes(blob[: len(blob) - 4096])  # the header is whole, the tensors are cut short
    damaged.write_bytes(blob[:-100] + bytes(100))  # the right length, other numbers: its checksum fails on loading
    result = run("choose", str(data), str(cut), str(damaged), *TINY, "--allow-random", *SMALL, "--json")
    assert result.exit_code == 0, result.output
    rows = _by_name(json.loads(result.stdout))
    for broken, why in ((rows[str(cut)], "truncated"), (rows[str(damaged)], "damaged|checksum|sha256")):
        assert broken["status"] == "failed" and re.search(why, broken["error"]) and "\n" not in broken["error"]
        assert broken["accuracy"] is None and broken["pareto"] is None
    assert rows["torchvision/resnet18"]["accuracy"] is not None and rows["timm/test_convnext"]["accuracy"] is not None
    text = run("choose", str(data), str(cut), *TINY, "--allow-random", *SMALL).stdout
    assert f"failed: {cut}: " in text


def test_a_saved_model_is_a_candidate_and_its_command_fine_tunes_from_it(first, data, tmp_path):
    saved = tmp_path / "related.safetensors"
    assert run("build", "timm/test_convnext+cls5", "-o", str(saved)).exit_code == 0
    found = json.loads(run("choose", str(data), str(saved), *SMALL, "--json").stdout)
    (row,) = found["candidates"]
    assert row["status"] == "saved model" and row["backbone"] == "timm/test_convnext" and row["accuracy"] is not None
    assert found["best"] == str(saved)
    command = shlex.split(found["command"])
    assert command[:4] == ["zoo", "train", "timm/test_convnext+cls3", str(data)]
    assert command[command.index("--weights") + 1] == str(saved)
    output = tmp_path / "tuned.safetensors"
    command[command.index("-o") + 1] = str(output)
    trained = run(*command[1:], "--epochs", "1", "-b", "4", "--quiet")
    assert trained.exit_code == 0, trained.output
    assert output.is_file()


def test_missing_weights_are_listed_with_how_to_get_them(module_cache, data):
    result = run("choose", str(data), "resnet18", *SMALL, "--json")
    assert result.exit_code == 1  # nothing could be measured, so nothing is recommended
    (row,) = json.loads(result.stdout)["candidates"]
    assert row["status"] == "weights not here" and row["accuracy"] is None
    assert "resnet18-f37072fd.pth" in row["note"] and "hub/checkpoints" in row["note"]
    lines = run("choose", str(data), "resnet18", *SMALL).stdout.strip().splitlines()
    assert lines[-2].startswith("weights not here: torchvision/resnet18: ") and "resnet18-f37072fd.pth" in lines[-2]
    assert "--allow-random" in lines[-1]


def test_the_plot_is_a_png_and_an_existing_one_needs_force(first, data, tmp_path):
    plot = tmp_path / "choice.png"
    found = json.loads(run("choose", str(data), *TINY, "--allow-random", *SMALL, "--plot", str(plot),
                           "--min-img-s", "1", "--max-ms", "1000", "--json").stdout)
    assert found["plot"] == str(plot) and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    one_line_error(run("choose", str(data), *TINY, "--allow-random", *SMALL, "--plot", str(plot)), "exists; use --force")
    assert run("choose", str(data), *TINY, "--allow-random", *SMALL, "--plot", str(plot), "--force").exit_code == 0


def test_python_gives_what_the_command_prints(first, data):
    choice = zoo.choose(data, TINY, allow_random=True, img_size=32, batch_size=4, progress=False)
    assert choice.best["name"] == first["best"] and choice.command == first["command"]
    assert [row["name"] for row in choice.rows] == [row["name"] for row in first["candidates"]]


@pytest.mark.parametrize("args, pattern", [
    (["{missing}"], "does not exist"),
    (["{file}"], "is not a folder"),
    (["{data}", "nosuchnet*"], "no backbone matches 'nosuchnet\\*'"),
    (["{data}", "resnt18"], "unknown backbone 'resnt18'"),
    (["{data}", "--weights", "=x"], "--weights '=x'"),
    (["{data}", "resnet18", "--weights", "resnt18=x.pth"], "no candidate is named 'resnt18'; candidates: torchvision/resnet18"),
    (["{data}", "--max-ms", "0"], "--max-ms must be more than 0"),
    (["{data}", "--max-params", "lots"], "--max-params 'lots' is not a number"),
    (["{data}", "--img-size", "4"], "--img-size must be a whole number of 8 or more"),
    (["{data}", "--plot", "{missing}/p.png"], "folder .* does not exist"),
    (["{data}", "nothere.safetensors"], "model file nothere.safetensors does not exist"),
    (["{one_class}"], "one class"),
])
def test_bad_input_is_one_line_and_exit_2(module_cache, data, tmp_path, args, pattern):
    (tmp_path / "file.txt").write_text("x")
    one_class = class_folders(tmp_path / "one", ("red",), 2, splits=("",))
    names = {"missing": str(tmp_path / "nope"), "file": str(tmp_path / "file.txt"), "data": str(data),
             "one_class": str(one_class)}
    one_line_error(run("choose", *[a.format(**names) for a in args]), pattern)


def test_weights_on_this_machine_are_measured_and_the_command_names_them(first, data, tmp_path):
    import torch
    import torchvision

    torch.manual_seed(1)
    weights = tmp_path / "my_resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    found = json.loads(run("choose", str(data), "resnet18", "--weights", f"resnet18={weights}", *SMALL,
                           "--json").stdout)
    (row,) = found["candidates"]
    assert row["status"] == "pretrained" and row["weights"] == str(weights)
    assert row["measured"] == {"quality": True, "cost": False}  # new weights, the same network's cost kept
    command = shlex.split(found["command"])
    assert command[command.index("--weights") + 1] == str(weights)


def test_a_validation_split_scores_its_validation_images(module_cache, tmp_path):
    split = class_folders(tmp_path / "split", ("blue", "red"), 4)  # train/ and val/, four images each per class
    choice = zoo.choose(split, "timm/test_convnext", allow_random=True, img_size=32, batch_size=4, progress=False)
    (row,) = choice.rows
    assert row["scored_images"] == 8 and choice.images == 16
    assert "--val-split" not in choice.command
