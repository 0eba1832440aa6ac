"""Every mistake a user can make: exit code 2 and one clear line on stderr, never a traceback."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from zoo.cli import cli


def fails(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["build", "resnt50+cls10"], "unknown backbone 'resnt50' (did you mean resnet50"),
        (["build", "resnet50+clss10"], "unknown head 'clss' (did you mean cls"),
        (["build", "torchvision/resnet5+cls10"], "unknown backbone 'torchvision/resnet5' (did you mean torchvision/resnet50"),
        (["build", "resnet50+cls10", "--freeze", "layr4"], "unknown freeze policy 'layr4'"),
        (["build", "resnet50"], "malformed spec 'resnet50': it names no head"),
        (["build", "resnet50+cls10:dropout"], "option 'dropout' is not key=value"),
        (["build", "resnet50+cls0"], "head cls0: 0 classes is impossible; cls needs at least 1"),
        (["build", "resnet50+cls"], "head cls needs a number of classes"),
        (["build", "resnet50+cls10:dropout=2"], "option dropout=2.0 is above its maximum"),
        (["build", "resnet50+cls10:hidden=0"], "option hidden=0 is below its minimum"),
        (["build", "resnet50+cls10:width=3"], "cls10 has no option 'width'"),
        (["build", "resnet50+cls10:hidden=big"], "option hidden=big must be of type int"),
        (["build", "resnet50+cls10+cls10"], "head cls10 appears twice"),
        (["build", "resnet50+cls10", "--freeze", "before:layer9"], "resnet50 has no stage 'layer9'"),
        (["build", "resnet50+cls10", "--freeze", "last:x"], "N must be a whole number"),
        (["info", "nothing-like-this"], "unknown backbone 'nothing-like-this'"),
        (["list", "--kind", "bogus"], "Invalid value for '--kind'"),
        (["bogus-command"], "No such command 'bogus-command'"),
        (["build"], "Missing argument 'SPEC'"),
    ],
)
def test_mistakes_are_one_line_and_exit_code_2(args, expected):
    assert expected in fails(*args)


def test_stage_error_lists_every_stage():
    line = fails("build", "resnet50+cls10", "--freeze", "layer9")
    assert line.endswith("or a stage of torchvision/resnet50: stem, layer1, layer2, layer3, layer4")


def test_the_installed_command_reports_errors_the_same_way(run_zoo):
    result = run_zoo("build", "resnt50+cls10")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("zoo: error: unknown backbone 'resnt50'") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [["--debug", "build", "resnt50+cls10"], ["build", "resnt50+cls10", "--debug"],
                                  ["build", "--debug", "resnt50+cls10"]])
def test_debug_is_taken_before_and_after_the_subcommand(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "Traceback" in result.output and "zoo: error: unknown backbone 'resnt50'" in result.output


def test_registry_is_taken_after_the_subcommand_and_an_option_after_double_dash_is_not(tmp_path):
    assert "registry file" in fails("info", "resnet18", "--registry", str(tmp_path / "none.toml"))
    assert "registry file" in fails("info", "resnet18", f"--registry={tmp_path / 'none.toml'}")
    assert "Got unexpected extra argument" in fails("info", "resnet18", "--", "--debug")
