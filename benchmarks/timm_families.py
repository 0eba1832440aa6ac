"""Does every timm family work as a zoo backbone? One model per family, ``timm/<name>+cls3``, one forward.

A family is a timm module's models sharing a name prefix (``mobilenetv3``, ``fbnetv3`` and ``lcnet`` in
``mobilenetv3.py``); its smallest model (parameters counted on the meta device) is built with random
weights and run on one image of its default input size, and the ``cls3`` logits' shape is checked.
Each family runs in a worker process that is restarted when a family exceeds ``--timeout`` seconds.
Writes timm-families.csv and timm-families.md into benchmarks/results/<machine>/.

    python benchmarks/timm_families.py [--timeout 180] [--only mobilenetv3,ghostnet] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import output

PREFIXES = ("tf", "gluon", "legacy", "ens", "adv")  # a name's first word that names a port, not a family


def family_of(name: str) -> str:
    """``mobilenetv3_small_050`` -> ``mobilenetv3``; ``tf_efficientnet_b0`` -> ``tf_efficientnet``."""
    words = name.split("_")
    head = words[0] if words[0] not in PREFIXES or len(words) == 1 else "_".join(words[:2])
    return re.sub(r"(?<![v\d])\d+[a-z]?$", "", head) or head


def families() -> dict[str, list[str]]:
    """``module/family`` -> its model names, every model timm lists."""
    import timm

    found: dict[str, list[str]] = {}
    for module in timm.list_modules():
        for name in timm.list_models(module=module):
            found.setdefault(f"{module}/{family_of(name)}", []).append(name)
    return found


def smallest(names: list[str]) -> str:
    """The model with the fewest parameters and then the smallest input, counted without allocating."""
    import timm
    import torch

    def size(name: str) -> tuple[int, int]:
        try:
            with torch.device("meta"):
                model = timm.create_model(name)
        except Exception:  # noqa: BLE001 - a model that fails even here is only a poor candidate
            return (1 << 62, 0)
        _, height, width = model.pretrained_cfg.get("input_size", (3, 224, 224))
        return sum(p.numel() for p in model.parameters()), height * width

    return min(names, key=lambda name: (*size(name), name))


def check(family: str, names: list[str]) -> dict[str, Any]:
    """Build the family's smallest model with cls3 and run one forward pass."""
    import torch

    import zoo

    model_name = smallest(names)
    row: dict[str, Any] = {"family": family, "model": model_name, "models": len(names)}
    started = time.perf_counter()
    try:
        model = zoo.build(f"timm/{model_name}+cls3").eval()
        size = tuple(model.backbone.input_size)
        row["input"] = "x".join(map(str, size[1:]))
        with torch.no_grad():
            logits = model(torch.randn(1, *size))
        if tuple(logits.shape) != (1, 3):
            raise RuntimeError(f"cls3 gave shape {tuple(logits.shape)}")
        row["result"] = "pass"
    except zoo.ZooError as exc:
        row.update(result="refused", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded per family, the point of the script
        row.update(result="fail", error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def worker(names: list[str]) -> None:
    """Check the given families in order, one JSON line each on stdout."""
    groups = families()
    for family in names:
        print(json.dumps(check(family, groups[family])), flush=True)


def run(todo: list[str], timeout: float) -> list[dict[str, Any]]:
    """Check every family in workers; a family that hangs past ``timeout`` is recorded and skipped."""
    rows: list[dict[str, Any]] = []
    while todo:
        process = subprocess.Popen([sys.executable, __file__, "--worker", ",".join(todo)],
                                   stdout=subprocess.PIPE, text=True)
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout + 120  # the first family also pays for imports and the list
        while todo:
            if not selector.select(max(0.0, deadline - time.monotonic())):
                process.kill()
                rows.append({"family": todo.pop(0), "result": "timeout", "error": f"over {timeout:g} s"})
                break
            line = process.stdout.readline()
            if not line:  # the worker died (out of memory, a crash in native code)
                process.wait()
                rows.append({"family": todo.pop(0), "result": "crash", "error": f"exit code {process.returncode}"})
                break
            row = json.loads(line)
            rows.append(row)
            todo.remove(row["family"])
            print(f"{row['result']:8} {row['family']:40} {row.get('model', '')} {row.get('error', '')}", flush=True)
            deadline = time.monotonic() + timeout
        process.wait()
    return rows


def markdown(rows: list[dict[str, Any]], command: str, machine: dict[str, Any]) -> str:
    counts = {result: sum(r["result"] == result for r in rows) for result in ("pass", "refused", "fail", "timeout", "crash")}
    lines = [
        "# timm families as zoo backbones: `timm/<smallest model>+cls3`, one forward pass", "",
        f"    {command}", "",
        f"Machine: {machine.get('cpu', '')}; {len(rows)} families: "
        + ", ".join(f"{n} {result}" for result, n in counts.items() if n), "",
        "| family | model | input | result | error |", "|---|---|---|---|---|",
    ]
    for row in rows:
        error = str(row.get("error", "")).replace("|", "\\|")
        lines.append(f"| {row['family']} | {row.get('model', '')} | {row.get('input', '')} | {row['result']} | {error} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=180, help="seconds one family may take")
    parser.add_argument("--only", default="", help="comma-separated families or family prefixes")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: this machine's)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker.split(","))
        return 0
    wanted = [w for w in args.only.split(",") if w]
    todo = sorted(f for f in families() if not wanted or any(f.split("/")[1].startswith(w) for w in wanted))
    rows = run(todo, args.timeout)
    folder, machine = output.results_dir("cpu", args.out)
    command = "python benchmarks/timm_families.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    output.write_csv(folder / "timm-families.csv", rows)
    output.write_text(folder / "timm-families.md", markdown(rows, command, machine))
    print(f"{sum(r['result'] == 'pass' for r in rows)}/{len(rows)} families pass; wrote {folder}/timm-families.md")
    return 0 if all(r["result"] in ("pass", "refused") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
