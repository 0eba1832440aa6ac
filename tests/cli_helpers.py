"""Running the CLI in-process and checking that a bad input is one line on stderr with exit code 2."""
from __future__ import annotations

import re

from click.testing import CliRunner

from zoo.cli import cli


def zoo(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result, pattern: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]
