"""A model file's metadata checked field by field before zoo uses any of it.

Every field must have the type, grammar and size zoo writes (part names as plugins must name parts,
the spec as the spec grammar reads it, checksums, counts); a file that breaks any of this is "damaged
or suspicious". Nothing named in a file is imported: parts resolve only through installed plugins.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from zoo._registry.spec import parse
from zoo._untrusted import NAME_LIMIT, VERSION_LIMIT, is_distribution, is_version, one_line
from zoo.errors import ZooError
from zoo.parts import BACKBONE_NAME, HEAD_NAME, NAMESPACE, POLICY_NAME

SPEC_LIMIT = 1000
TEXT_LIMIT = 4096  # any other string, such as the weights' source
COUNT_LIMIT = 100_000  # items in a list from the file
PLUGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
STAGE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
FREEZE = re.compile(r"[a-z0-9][a-z0-9_.\-/]*(?::[A-Za-z0-9_.\-]+)?")
HEAD_KEY = re.compile(r"[a-z][a-z0-9_\-]*")
OPTION_KEY = re.compile(r"[a-z_][a-z0-9_]*")
SHA256 = re.compile(r"[0-9a-f]{64}")
KINDS = ("backbone", "head", "freeze")


def is_part_name(kind: str, name: object) -> bool:
    """``namespace/name``, each following the grammar a plugin's part must follow for ``kind``."""
    if not isinstance(name, str) or len(name) > NAME_LIMIT:
        return False
    namespace, slash, bare = name.rpartition("/")
    pattern = {"backbone": BACKBONE_NAME, "head": HEAD_NAME, "freeze": POLICY_NAME}[kind]
    return (not slash or NAMESPACE.fullmatch(namespace) is not None) and pattern.fullmatch(bare) is not None


class _Checker:
    """Checks one file's metadata field by field; the first problem is raised as a one-line `ZooError`."""

    def __init__(self, path: object) -> None:
        self.path = path

    def fail(self, what: str) -> ZooError:
        return ZooError(f"{self.path} is damaged or suspicious: {what}")

    def text(self, value: Any, field: str, pattern: re.Pattern[str] | None = None, limit: int = NAME_LIMIT,
             empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(f"its {field} is {type(value).__name__}, not a string")
        if len(value) > limit:
            raise self.fail(f"its {field} is {len(value):,} characters long")
        if value == "" and empty:
            return value
        if pattern is not None and not pattern.fullmatch(value):
            raise self.fail(f"its {field} '{one_line(value, 60)}' is not a valid name")
        return value

    def items(self, value: Any, field: str, kind: type = list) -> Any:
        if not isinstance(value, kind):
            raise self.fail(f"its {field} is {type(value).__name__}, not a {kind.__name__}")
        if len(value) > COUNT_LIMIT:
            raise self.fail(f"its {field} has {len(value):,} entries")
        return value

    def integer(self, value: Any, field: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"its {field} is not a count")
        return value

    def numbers(self, value: Any, field: str, check: Callable[[Any], bool]) -> None:
        values = self.items(value, field)
        if not 1 <= len(values) <= 4 or not all(not isinstance(v, bool) and isinstance(v, (int, float)) and check(v)
                                                for v in values):
            raise self.fail(f"its {field} is not a short list of numbers")

    def version(self, value: Any, field: str) -> None:
        if value != "" and not is_version(value):
            shown = one_line(value, 40) if isinstance(value, str) else type(value).__name__
            raise self.fail(f"its {field} '{shown}' is not a valid version (PEP 440)")

    def plugin(self, record: Any) -> None:
        if not isinstance(record, dict):
            raise self.fail("its plugin list holds something that is not a table")
        kind = record.get("kind")
        if kind not in KINDS:
            raise self.fail("its plugin list names a part of no known kind")
        for key in ("part", "plugin", "distribution", "version"):
            self.text(record.get(key), f"plugin {key}", limit=VERSION_LIMIT if key == "version" else NAME_LIMIT)
        if not is_part_name(kind, record["part"]):
            raise self.fail(f"its plugin list names the {kind} '{one_line(record['part'], 60)}', not a valid name")
        self.text(record["plugin"], "plugin name", PLUGIN)
        if record["distribution"] and not is_distribution(record["distribution"]):
            raise self.fail(f"its plugin list names the distribution '{one_line(record['distribution'], 60)}', "
                            "not a valid package name (PEP 508)")
        self.version(record["version"], "plugin version")
        contract = record.get("contract", "")  # absent in files written before contracts had versions
        if contract and not (isinstance(contract, str) and re.fullmatch(r"\d{1,4}\.\d{1,4}", contract)):
            raise self.fail("its plugin list names a contract version that is not MAJOR.MINOR")

    def spec(self, value: Any) -> None:
        self.text(value, "spec", limit=SPEC_LIMIT)
        try:
            parse(value)
        except ZooError:
            raise self.fail(f"its spec '{one_line(value, 80)}' is not a valid spec") from None

    def head(self, head: Any) -> None:
        if not isinstance(head, dict):
            raise self.fail("its head list holds something that is not a table")
        self.text(head.get("name"), "head name", HEAD_KEY)
        if not is_part_name("head", head.get("part")):
            raise self.fail("its head list names a head part that is not a valid name")
        if head.get("size") is not None:
            self.integer(head["size"], "head size")
        self.options(head.get("options", {}), "head")

    def options(self, value: Any, owner: str) -> None:
        """A part's options: names as options are named, each a plain value or None."""
        for key, option in self.items(value, f"{owner} options", dict).items():
            self.text(key, f"{owner} option name", OPTION_KEY)
            if option is not None and not isinstance(option, (bool, int, float, str)):
                raise self.fail(f"its {owner} option {key} is {type(option).__name__}, not a value")
            if isinstance(option, str):
                self.text(option, f"{owner} option value", limit=TEXT_LIMIT)

    def labels(self, value: Any) -> None:
        for key, names in self.items(value, "labels", dict).items():
            self.text(key, "labels' head name", HEAD_KEY)
            for name in self.items(names, f"labels for {key}"):
                self.text(name, f"label of {key}", limit=TEXT_LIMIT)

    def weights(self, value: Any) -> None:
        self.items(value, "weights", dict)
        self.text(value.get("source"), "weights' source", limit=TEXT_LIMIT)
        if value.get("sha256") is not None:
            self.text(value["sha256"], "weights' sha256", SHA256, empty=True)



def check_metadata(meta: dict[str, Any], path: object) -> None:
    """Raise a one-line `ZooError` unless every field of ``meta`` has the type, grammar and size zoo writes."""
    check = _Checker(path)
    check.spec(meta["spec"])
    check.text(meta["freeze"], "freeze policy", FREEZE, limit=NAME_LIMIT * 2)
    for stage in check.items(meta["frozen_stages"], "frozen stages"):
        check.text(stage, "frozen stage", STAGE)
    for record in check.items(meta["plugins"], "plugin list"):
        check.plugin(record)
    check.text(meta["content_sha256"], "content checksum", SHA256)
    for head in check.items(meta.get("heads", []), "head list"):
        check.head(head)
    if meta.get("labels") is not None:
        check.labels(meta["labels"])
    if meta.get("backbone_options") is not None:
        check.options(meta["backbone_options"], "backbone")
    if meta.get("frozen_parameters") is not None:
        for name in check.items(meta["frozen_parameters"], "frozen parameters"):
            check.text(name, "frozen parameter", STAGE)
    if "frozen_by_hand" in meta and not isinstance(meta["frozen_by_hand"], bool):
        raise check.fail(f"its frozen_by_hand is {type(meta['frozen_by_hand']).__name__}, not true or false")
    if "input_size" in meta:
        check.numbers(meta["input_size"], "input size", lambda v: isinstance(v, int) and 0 < v <= 1 << 16)
    for field in ("mean", "std"):
        if field in meta:
            check.numbers(meta[field], field, math.isfinite)
    for field in ("parameters", "trainable_parameters"):
        if field in meta:
            check.integer(meta[field], field.replace("_", " "))
    for field in ("zoo_version", "torch_version"):
        if field in meta:
            check.version(meta[field], field.replace("_", " "))
    if meta.get("weights") is not None:
        check.weights(meta["weights"])
