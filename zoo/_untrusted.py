"""Text from a model file is data from whoever made the file: escaped and bounded before it is shown.

A ``.safetensors`` file may come from anyone. Every string from a file that reaches a terminal or an
image goes through `one_line`: one line, control characters escaped, length bounded. Names and versions
a file gives are checked against the grammar they claim to follow (PEP 508 distribution names, PEP 440
versions) before zoo uses them or suggests installing anything; `zoo._modelfile.metadata_check` checks the rest.
"""
from __future__ import annotations

import re
import unicodedata

NAME_LIMIT = 128  # a distribution, plugin, part or stage name
VERSION_LIMIT = 64
LABEL_LIMIT = 200  # a class label, as kept and shown

# PEP 508: letters and digits, with '.', '_' and '-' inside.
DISTRIBUTION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# Bidirectional overrides and isolates reorder what a terminal shows (CVE-2021-42574).
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char in _BIDI or unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def one_line(text: object, limit: int = LABEL_LIMIT) -> str:
    """``text`` as one printable line of at most ``limit`` characters: newlines, terminal escapes and
    other control characters written as ``\\n``, ``\\x1b``...; a longer text is cut and says so."""
    text = str(text)
    shown = "".join(_escaped(c) for c in text[: limit + 1])
    if len(shown) <= limit and len(text) <= limit:
        return shown
    said = f"... ({len(text):,} chars)"
    return shown[: max(limit - len(said), 0)] + said


def is_distribution(name: object) -> bool:
    """A valid PEP 508 distribution name, the kind pip can be asked to install."""
    return isinstance(name, str) and len(name) <= NAME_LIMIT and DISTRIBUTION.fullmatch(name) is not None


def is_version(text: object) -> bool:
    """A valid PEP 440 version."""
    from packaging.version import InvalidVersion, Version

    if not isinstance(text, str) or not text or len(text) > VERSION_LIMIT or text != text.strip():
        return False
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def clean_labels(labels: dict[str, list[str]]) -> dict[str, list[str]]:
    """Labels as a model keeps them: each one line and bounded, since answers print and draw them."""
    return {key: [one_line(name, LABEL_LIMIT) for name in names] for key, names in labels.items()}
