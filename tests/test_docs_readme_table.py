"""The README's headline: ``zoo build resnet50+cls10 --freeze=layer4`` prints exactly the table shown there."""
from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from zoo.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND = "zoo build resnet50+cls10 --freeze=layer4"


def readme_block(command: str) -> str:
    """The output printed under ``$ command`` in the README's first code block that shows it."""
    match = re.search(rf"^\$ {re.escape(command)}\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    assert match, f"the README shows no output of {command}"
    return match.group(1)


def test_the_freeze_table_is_the_one_in_the_readme():
    result = CliRunner().invoke(cli, COMMAND.split()[1:])
    assert result.exit_code == 0, result.output
    assert result.stdout == readme_block(COMMAND)


def test_the_readme_block_says_what_trains():
    """The golden block itself: a swap of the two labels in both places would otherwise go unseen."""
    block = readme_block(COMMAND)
    rows = [line.split() for line in block.splitlines() if line.startswith(("stage ", "head "))]
    assert {row[1]: row[-1] for row in rows} == {"stem": "frozen", "layer1": "frozen", "layer2": "frozen",
                                                 "layer3": "frozen", "layer4": "trains", "cls10": "trains"}
    trains = sum(int(row[2].replace(",", "")) for row in rows if row[-1] == "trains")
    total = sum(int(row[2].replace(",", "")) for row in rows)
    assert f"total parameters:     {total:,}" in block
    assert f"trainable parameters: {trains:,} ({100 * trains / total:.1f}%)" in block
