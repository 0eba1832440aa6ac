"""Every output block of the README (a fenced block whose lines start with ``$ command``) shows what the commands
print: each ``$`` line runs in a fresh shell, in a folder of its own per block, and its output must be the block's
lines, numbers, hashes and timings aside. Blocks that cannot run here are listed with the reason, and the list
is checked against the README, so neither side goes stale."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# a command (its start) -> why its block is not run here
NOT_RUN = {
    "zoo train resnet18+cls2 shapes -o m.safetensors --epochs 10": "needs a Ctrl-C mid-run (tests/test_training_resume.py "
                                                                   "interrupts a run and resumes it)",
    "zoo choose figures": "minutes of measuring; its block is the output of a real run",
    "zoo build needsdep+cls2": "needs the faulty test plugin (tests/test_plugin_failures.py checks that line)",
}


def output_blocks() -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """(the block's first command, [(command, expected lines)]) for each README block of ``$`` lines."""
    found = []
    for block in re.findall(r"^```\n(\$ .*?)^```", README, re.S | re.M):
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((re.sub(r"\s{2,}#.*$", "", line[2:]).strip(), []))
            else:
                steps[-1][1].append(line)
        found.append((steps[0][0], steps))
    return found


BLOCKS = output_blocks()


def masked(text: str, cache: str) -> list[str]:
    """Lines with what changes from run to run (numbers, hashes, the cache folder) replaced."""
    text = text.replace(cache, "~/.cache/zoo")
    text = re.sub(r"\b[0-9a-f]{16,64}\b", "HASH", text)
    text = re.sub(r"\d[\d,]*(\.\d+)?(e[-+]?\d+)?", "N", text)
    return [line.rstrip() for line in text.strip().splitlines()]


def test_the_list_of_blocks_not_run_names_blocks_that_exist():
    starts = [first for first, _ in BLOCKS]
    for command in NOT_RUN:
        assert any(start.startswith(command) for start in starts), f"README has no block starting {command!r}"
    assert len(BLOCKS) >= 5  # the parser found the README's blocks


@pytest.mark.parametrize("first, steps", [b for b in BLOCKS if not any(b[0].startswith(c) for c in NOT_RUN)],
                         ids=[b[0][:50] for b in BLOCKS if not any(b[0].startswith(c) for c in NOT_RUN)])
def test_a_readme_output_block_is_what_its_commands_print(first, steps, tmp_path):
    cache = tmp_path / "cache"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "ZOO_CACHE_DIR": str(cache), "ZOO_DEVICE": "cpu", "PYTHONUNBUFFERED": "1",
           "COLUMNS": "120", "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    for command, expected in steps:
        shell = re.sub(r"^python ", f"{sys.executable} ", command)
        done = subprocess.run(["bash", "-c", shell], cwd=tmp_path, env=env, capture_output=False,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        assert masked(done.stdout, str(cache)) == masked("\n".join(expected), str(cache)), (
            f"README shows for `{command}`:\n" + "\n".join(expected) + "\n\nit prints:\n" + done.stdout)
