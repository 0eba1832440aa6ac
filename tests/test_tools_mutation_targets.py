"""The mutation check (`tools/mutation_check.py`, run on demand) stays runnable: every mutant's snippet occurs
exactly once in the file it edits, and every test it names exists, so moving code shows up here, in the suite,
rather than as a mutation run that stops at its first stale mutant."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # a tool, not a test: it lives in tools/

import mutation_check  # noqa: E402
EDITS = [(mutant.name, edit) for mutant in mutation_check.MUTANTS for edit in mutant.edits]
TESTS = sorted({test for mutant in mutation_check.MUTANTS for test in mutant.tests})


def _defined(path: Path) -> set[str]:
    """The test node names a file defines: ``test_x`` and ``TestClass::test_x``."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(f"{node.name}::{item.name}" for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return names


@pytest.mark.parametrize("name, edit", EDITS, ids=[f"{name}:{edit.path}" for name, edit in EDITS])
def test_every_mutants_snippet_occurs_once_in_its_file(name, edit):
    text = (ROOT / edit.path).read_text()
    assert text.count(edit.snippet) == 1, f"{name}: retarget its snippet in {edit.path}:\n{edit.snippet}"
    assert edit.replacement != edit.snippet


@pytest.mark.parametrize("test", TESTS)
def test_every_test_a_mutant_names_exists(test):
    path, _, node = test.partition("::")
    assert (ROOT / path).is_file(), f"{path} does not exist"
    if node:
        assert node.split("[")[0] in _defined(ROOT / path), f"{path} defines no {node}"


def test_mutant_names_are_unique_and_each_names_a_test():
    names = [mutant.name for mutant in mutation_check.MUTANTS]
    assert len(names) == len(set(names))
    assert all(mutant.tests and mutant.edits for mutant in mutation_check.MUTANTS)


def test_the_check_catches_a_stale_snippet(tmp_path):
    """What the tests above guard against: a snippet that is gone stops the run with a line that says so."""
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "moved.py").write_text("x = 1\n")
    with pytest.raises(SystemExit, match="the snippet occurs 0 times, not once; retarget it"):
        mutation_check.apply(tmp_path, mutation_check.Edit("zoo/moved.py", "y = 2\n", "y = 3\n"))
