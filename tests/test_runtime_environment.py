"""`zoo env`, `python -m zoo`, shell completion without torch, and the environment variables in --help."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from zoo import __version__
from zoo._runtime.environment import cpu_capability
from zoo.cli import cli


def test_env_json_names_versions_cpu_capability_and_cuda():
    result = CliRunner().invoke(cli, ["env", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"zoo", "python", "platform", "packages", "cpu", "cuda", "variables"} <= set(data)
    import torch

    assert data["packages"]["torch"] == torch.__version__.split("+")[0]
    assert {"torchvision", "timm", "onnx", "onnxruntime", "torchao"} <= set(data["packages"])
    assert {"model", "avx2", "avx512", "vnni", "amx", "native_bf16", "int8_export"} <= set(data["cpu"])
    assert data["cuda"]["available"] == torch.cuda.is_available()
    assert len(data["cuda"]["gpus"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert "ZOO_OFFLINE" in data["variables"]


def test_env_text_is_one_line_per_fact():
    result = CliRunner().invoke(cli, ["env"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("zoo ")
    assert "capability   AVX2 " in result.stdout and "VNNI" in result.stdout and "AMX" in result.stdout


def test_cpu_capability_reads_the_flags():
    sapphire = cpu_capability({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"})
    assert sapphire == {"avx2": True, "avx512": True, "vnni": True, "amx": True, "native_bf16": True,
                        "int8_export": True}
    old = cpu_capability({"avx2", "fma"})
    assert old == {"avx2": True, "avx512": False, "vnni": False, "amx": False, "native_bf16": False,
                   "int8_export": False}
    assert cpu_capability({"avx2", "avx_vnni"})["vnni"] and cpu_capability({"avx2", "avx_vnni"})["int8_export"]


def test_python_dash_m_zoo_is_the_zoo_command():
    out = subprocess.run([sys.executable, "-m", "zoo", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == f"zoo, version {__version__}"
    bad = subprocess.run([sys.executable, "-m", "zoo", "build", "resnt50+cls10"], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("zoo: error: unknown backbone 'resnt50'")


def test_env_names_the_device_auto_takes_and_a_bad_zoo_device(monkeypatch):
    import torch

    monkeypatch.delenv("ZOO_DEVICE", raising=False)
    data = json.loads(CliRunner().invoke(cli, ["env", "--json"]).stdout)
    assert data["device"].startswith("cuda:0" if torch.cuda.is_available() else ("mps", "cpu"))
    monkeypatch.setenv("ZOO_DEVICE", "gpu")
    result = CliRunner().invoke(cli, ["env"])
    assert result.exit_code == 0  # a bug report is still written
    assert "device       none: ZOO_DEVICE=gpu: unknown device 'gpu' (did you mean cuda?)" in result.stdout
    assert "ZOO_DEVICE           gpu" in result.stdout


def test_help_lists_the_environment_variables():
    result = CliRunner().invoke(cli, ["--help"])
    for variable in ("ZOO_DEVICE", "ZOO_OFFLINE", "ZOO_REGISTRY", "ZOO_CACHE_DIR", "ZOO_DISABLE_PLUGINS", "ZOO_STRICT_PLUGINS",
                     "_ZOO_COMPLETE=bash_source"):
        assert variable in result.stdout


def _complete(*words: str) -> tuple[list[str], list[str]]:
    """bash completion of the last word; (completions, heavy modules imported while completing)."""
    probe = (
        "import sys\n"
        "from zoo.cli import cli\n"
        "try:\n"
        "    cli.main(prog_name='zoo')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('heavy:', ','.join(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules))\n"
    )
    env = {**os.environ, "_ZOO_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(("zoo", *words)),
           "COMP_CWORD": str(len(words))}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True,
                         timeout=300)
    lines = out.stdout.strip().splitlines()
    heavy = lines[-1].removeprefix("heavy:").strip()
    return [line.split(",", 1)[1] for line in lines[:-1]], [m for m in heavy.split(",") if m]


def test_completion_of_specs_and_freeze_policies_never_imports_torch():
    CliRunner().invoke(cli, ["list"])  # the timm name cache is warm from here on, as after a first run
    backbones, heavy = _complete("build", "resnet1")
    assert {"resnet18", "resnet101"} <= set(backbones) and heavy == []
    heads, heavy = _complete("export", "resnet18+c")
    assert "resnet18+cls" in heads and heavy == []
    policies, heavy = _complete("build", "resnet18", "--freeze", "")
    assert {"none", "all", "last:", "before:"} <= set(policies) and heavy == []
    files, _ = _complete("bench", "./models/")
    assert files == ["./models/"]
