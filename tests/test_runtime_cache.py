"""`zoo cache list` and `zoo cache clear`: what lies under $ZOO_CACHE_DIR, for which model and data, and clearing
it without ever touching a file outside it or one zoo did not make."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import zoo
from tests.cli_helpers import one_line_error, zoo as run_cli
from tests.drawn_data import class_folders

DAY = 86400


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ZOO_CACHE_DIR", str(folder))
    return folder


def _file(path, size, days_old=0.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - days_old * DAY
    os.utime(path, (then, then))
    return path


def test_a_feature_cache_is_listed_with_its_model_data_and_size(cache, tmp_path):
    shapes = class_folders(tmp_path / "shapes", per_class=3)
    result = zoo.fit("resnet18+cls2", shapes, freeze="all", epochs=1, batch_size=4, img_size=32)
    entries = zoo.cache_entries("features")
    assert [e.path for e in entries] == [result.feature_cache["file"]]
    assert entries[0].bytes == result.feature_cache["bytes"] > 0
    assert entries[0].about == f"torchvision/resnet18+zoo/cls2 on {shapes} (12 images)"
    shown = run_cli("cache", "list")
    assert shown.exit_code == 0, shown.output
    assert f"features  torchvision/resnet18+zoo/cls2 on {shapes} (12 images)" in shown.stdout
    assert shown.stdout.rstrip().endswith(f"in {cache}")


def test_the_list_names_timm_lists_downloads_and_leftovers_by_kind(cache):
    assert run_cli("list", "timm/resnet1*").exit_code == 0  # writes timm's model list into the cache
    _file(cache / "weights" / "resnet50-finetuned.pth", 2000, days_old=3)
    _file(cache / "weights" / ".resnet50-finetuned.pth.abc.part", 10, days_old=1)
    _file(cache / "notes.txt", 5)
    listed = json.loads(run_cli("cache", "list", "--json").stdout)
    found = {e["kind"]: e for e in listed}
    assert set(found) == {"lists", "weights", "partial", "other"}
    lists = [e["about"] for e in listed if e["kind"] == "lists"]
    assert any(about.startswith("timm ") and about.endswith(": models list") for about in lists), lists
    assert found["weights"]["bytes"] == 2000 and 3 * DAY - 60 < found["weights"]["age_s"] < 3 * DAY + 60
    assert found["other"]["about"] == "not made by zoo (never removed)"
    only = json.loads(run_cli("cache", "list", "weights", "--json").stdout)
    assert [e["kind"] for e in only] == ["weights"]


def test_clear_older_than_removes_only_old_files_and_says_what_it_freed(cache):
    old = _file(cache / "features" / "aaaa.safetensors", 3000, days_old=10)
    new = _file(cache / "features" / "bbbb.safetensors", 500, days_old=1)
    result = run_cli("cache", "clear", "--older-than", "7d")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"removed {old}  (features, 3.0 kB)", "1 files removed, 3.0 kB freed (3,000 bytes)"]
    assert not old.exists() and new.exists()
    removed = zoo.clear_cache()
    assert [e.path for e in removed] == [str(new)] and not (cache / "features").exists()


def test_clear_never_removes_what_zoo_did_not_make_links_or_files_outside(cache, tmp_path):
    outside = _file(tmp_path / "mine" / "weights.pth", 100, days_old=30)
    (cache / "weights").mkdir(parents=True)
    link = cache / "weights" / "linked.pth"
    link.symlink_to(outside)
    (cache / "features").symlink_to(tmp_path / "mine", target_is_directory=True)
    notes = _file(cache / "notes.txt", 5, days_old=30)
    writing = _file(cache / "choose" / ".probe-1.json.123.tmp", 5)  # a write under way
    stale = _file(cache / "choose" / ".probe-2.json.456.tmp", 5, days_old=2)
    removed = zoo.clear_cache()
    assert [e.path for e in removed] == [str(stale)]
    assert outside.read_bytes() == b"x" * 100 and link.is_symlink() and notes.exists() and writing.exists()
    one_line_error(run_cli("cache", "clear", "other"), "never removed")


def test_bad_ages_and_kinds_are_one_line_errors_and_remove_nothing(cache):
    kept = _file(cache / "weights" / "w.pth", 10, days_old=30)
    one_line_error(run_cli("cache", "clear", "--older-than", "7x"), r"--older-than '7x': give a number and a unit")
    one_line_error(run_cli("cache", "clear", "everything"), "Invalid value for '\\[WHAT\\]'")
    with pytest.raises(zoo.ZooError, match="no cache entry kind 'nope'"):
        zoo.cache_entries("nope")
    assert kept.exists()


def test_an_empty_or_missing_cache_lists_nothing(cache):
    assert zoo.cache_entries() == []
    assert run_cli("cache", "list").stdout.strip() == f"{cache}: empty"
    assert run_cli("cache", "clear").stdout.strip() == "0 files removed, 0 B freed (0 bytes)"


def test_listing_the_cache_imports_no_torch(cache):
    code = ("import sys; from click.testing import CliRunner; from zoo.cli import cli; "
            "r = CliRunner().invoke(cli, ['cache', 'list', '--json']); assert r.exit_code == 0, r.output; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "ZOO_CACHE_DIR": str(cache)})
