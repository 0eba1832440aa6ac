"""Reading images of any size and mode with PIL: one rule for predict, train and eval.

The tensor a model takes is made by its own eval transform (`zoo.transforms`), which resizes first, so an
image of any size is usable (1x1 and 4000x30 included); only a file that cannot be read is skipped.
`check_size` is still used by int8 calibration (`zoo.inference.quantize`), which skips such images.

Every image becomes 8-bit RGB: grayscale and palette images are expanded, 16-bit and float images
scaled, transparent images laid over white, and EXIF rotation applied. A file PIL cannot read, or a
truncated one, is a `ZooError` naming the file, so that callers can skip it and go on.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import ZooError

if TYPE_CHECKING:
    from PIL import Image

    from zoo.backbone import Backbone

BACKGROUND = (255, 255, 255)
HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
NAMED = 3  # unreadable files named in a message; the rest are counted
_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str | os.PathLike[str]) -> tuple:
    """Sort key putting ``2.png`` before ``10.png``, as a file browser does (case folded, digits as numbers)."""
    parts = re.split(_DIGITS, os.fspath(path).casefold())
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part) for part in parts)


def name_few(names: Sequence[str], count: int | None = None, shown: int = NAMED) -> str:
    """``a.jpg, b.jpg, c.jpg and 4 more``: the files a message about unreadable images names; ``count``, when
    more were unreadable than are named, makes the rest."""
    head = ", ".join(os.fspath(name) for name in names[:shown])
    rest = (len(names) if count is None else count) - min(len(names), shown)
    return head + (f" and {rest} more" if head and rest > 0 else "")


def unreadable(count: int, total: int | None, names: Sequence[str] = (), what: str = "") -> str:
    """``2 of 6 images of photos/ could not be read: a.jpg, b.jpg``: one wording for train, eval and predict."""
    text = (f"{count} of {total} images" if total else f"{count} images") + (f" of {what}" if what else "")
    listed = name_few(names, count)
    return text + " could not be read" + (f": {listed}" if listed else "")


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB, whatever its mode."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode in HIGH_DEPTH:
        import numpy as np

        array = np.asarray(image, dtype=np.float64)
        peak = float(array.max()) if array.size else 0.0
        if image.mode == "F" and peak <= 1.0:
            array = array * 255.0
        elif peak > 255.0:
            array = array * (255.0 / (65535.0 if peak <= 65535.0 else peak))
        return Image.fromarray(np.clip(array, 0, 255).round().astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """The image at ``path``, fully decoded, upright and in RGB; `ZooError` naming the file otherwise."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = os.fspath(path)
    if not Path(name).is_file():
        raise ZooError(f"{name}: no such file" if not Path(name).exists() else f"{name}: not a file")
    try:
        with Image.open(name) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return to_rgb(upright if upright is not None else image)
    except UnidentifiedImageError:
        raise ZooError(f"{name}: not an image PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise ZooError(f"{name}: refused: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ZooError(f"{name}: damaged or truncated image ({reason})") from None


def min_side(backbone: Backbone) -> int:
    """The smallest image side the backbone can see anything in: its deepest stage's stride."""
    strides = [stage.stride for stage in backbone.stages if stage.stride is not None]
    return max(strides, default=1)


def check_size(image: Image.Image, name: str, backbone: Backbone) -> None:
    """`ZooError` when ``image`` is smaller than one cell of the backbone's deepest stage."""
    need = min_side(backbone)
    width, height = image.size
    if width < need or height < need:
        raise ZooError(f"{name}: {width}x{height} pixels is too small for this backbone, which reduces images "
                       f"{need} times; give an image of at least {need}x{need}")
