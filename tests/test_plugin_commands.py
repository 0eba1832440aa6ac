"""The `zoo_commands` hook: a package adds commands to `zoo`; a failing hook adds none and breaks nothing."""
from __future__ import annotations

import json


def test_a_plugin_adds_a_command(contract_site, run_zoo):
    result = run_zoo("faulty-hello", "world", site=contract_site)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello world from zoo-faulty\n"
    helped = run_zoo("--help", site=contract_site)
    assert "faulty-hello" in helped.stdout and "Greet NAME" in helped.stdout
    assert "zoo: warning: plugin commands (zoo-faulty) adds command 'list', which zoo or another plugin already " \
           "has; it is left out" in helped.stderr
    listed = run_zoo("list", "--kind", "preset", site=contract_site)
    assert listed.returncode == 0 and "resnet18-feature-extractor" in listed.stdout


def test_a_failing_command_hook_adds_nothing_and_is_listed_as_an_error(contract_site, run_zoo):
    assert "half-added" not in run_zoo("--help", site=contract_site).stdout
    refused = run_zoo("half-added", site=contract_site)
    assert refused.returncode == 2 and "No such command 'half-added'" in refused.stderr
    listed = run_zoo("plugins", "--json", site=contract_site)
    assert listed.returncode == 0, listed.stderr
    records = {r["name"]: r for r in json.loads(listed.stdout)}
    assert records["badcommands"]["status"] == "error"
    assert records["badcommands"]["error"] == "zoo_commands failed: RuntimeError: commands table is corrupt"
    assert records["badcommands"]["provides"] == {"freeze": ["badcommands/stillworks"]}
    assert records["commands"]["provides"] == {"command": ["faulty-hello"]}
    assert run_zoo("info", "stillworks", site=contract_site).returncode == 0

