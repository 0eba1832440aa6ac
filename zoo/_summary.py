"""What `zoo build` and `zoo info` print: parameters and what trains, stage by stage and head by head."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo._model import ZooModel


def _count(parameters) -> tuple[int, int]:
    total = trainable = 0
    for p in parameters:
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def model_summary(model: ZooModel) -> dict[str, Any]:
    backbone = model.backbone
    rows = []
    for stage in backbone.stages:
        total, trainable = _count(backbone.stage_parameters(stage.name))
        rows.append({"kind": "stage", "name": stage.name, "params": total, "trainable": trainable,
                     "trains": stage.name not in model.frozen_stages,
                     "channels": stage.channels, "stride": stage.stride})
    for name, head in model.heads.items():
        total, trainable = _count(head.parameters())
        rows.append({"kind": "head", "name": name, "params": total, "trainable": trainable, "trains": True,
                     "channels": None, "stride": None})
    total, trainable = _count(model.parameters())
    return {
        "spec": model.spec,
        "freeze": model.freeze_policy,
        "frozen_stages": list(model.frozen_stages),
        "total_params": total,
        "trainable_params": trainable,
        "input_size": list(backbone.input_size),
        "mean": list(backbone.mean),
        "std": list(backbone.std),
        "parts": rows,
    }


def format_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_summary(summary: dict[str, Any]) -> str:
    rows = []
    for part in summary["parts"]:
        stride = "" if part["stride"] is None else f"/{part['stride']}"
        rows.append([part["kind"], part["name"], f"{part['params']:,}", "" if part["channels"] is None else part["channels"],
                     stride, "trains" if part["trains"] else "frozen"])
    table = format_table(["part", "name", "params", "channels", "stride", "status"], rows, right={2, 3, 4})
    total, trainable = summary["total_params"], summary["trainable_params"]
    share = 100.0 * trainable / total if total else 0.0
    return (
        f"{summary['spec']}  (freeze: {summary['freeze']})\n{table}\n"
        f"total parameters:     {total:,}\ntrainable parameters: {trainable:,} ({share:.1f}%)"
    )
