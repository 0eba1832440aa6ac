"""Marking answers on an image with PIL: labelled boxes, key points and caption lines.

``zoo predict --out DIR`` gives each head's ``draw`` a `Canvas` over the original image; sizes of
lines, dots and text follow the image's size so that marks stay visible on large photos and captions
stay small on small ones. Masks are laid first (class colours blended over the image), then captions,
boxes and points, so that no caption hides where something is.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from zoo._untrusted import one_line

if TYPE_CHECKING:
    from PIL import Image

TEXT_LIMIT = 300  # characters of a caption or box label: what a file's labels put in them is bounded
PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128))


class Canvas:
    """A copy of an image to annotate; marks are collected, then drawn by `png`."""

    def __init__(self, image: Image.Image) -> None:
        from PIL import ImageDraw, ImageFont

        self.image = image.convert("RGB")
        self.draw = ImageDraw.Draw(self.image)
        self.unit = max(1, round(max(self.image.size) / 300))
        # 12 px on a 300 px image and larger ones grow with the unit; a smaller image gets text 1/16 of its
        # short side (6 px at least), so that a caption on a 48 px image covers a line, not a quarter of it
        self.font_size = min(10 * self.unit + 2, max(6, round(min(self.image.size) / 16)))
        try:
            self.font = ImageFont.load_default(size=self.font_size)
        except (TypeError, OSError):  # a Pillow without FreeType
            self.font = ImageFont.load_default()
        self._captions: list[str] = []
        self._boxes: list[tuple[Sequence[float], str, tuple[int, int, int]]] = []
        self._points: list[tuple[list[Sequence[float]], tuple[int, int, int]]] = []
        self._masks: list[tuple[Any, float, int | None]] = []

    def _text(self, xy: tuple[float, float], text: str, color: tuple[int, int, int]) -> None:
        left, top, right, bottom = self.draw.textbbox(xy, text, font=self.font)
        pad = self.unit
        self.draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=color)
        self.draw.text(xy, text, fill=text_color(color), font=self.font)

    def caption(self, text: str) -> None:
        """A line of text at the top left, below earlier captions."""
        self._captions.append(one_line(text, TEXT_LIMIT))

    def box(self, box: Sequence[float], label: str, color: tuple[int, int, int] = PALETTE[0]) -> None:
        """A rectangle (x1, y1, x2, y2) with its label above it (inside it at the image's top edge)."""
        self._boxes.append((box, one_line(label, TEXT_LIMIT), color))

    def points(self, points: Iterable[Sequence[float]], color: tuple[int, int, int] = PALETTE[1]) -> None:
        """A dot with a dark ring at each (x, y)."""
        self._points.append((list(points), color))

    def mask(self, classes: Any, alpha: float = 0.45, background: int | None = 0) -> None:
        """A class index per pixel (rows of ints, a numpy array or a CPU tensor, H x W), each class's colour
        (`color`) blended over the image with ``alpha``; ``background`` pixels are left as they are. A mask of
        another size is stretched over the image (nearest class)."""
        if not 0 <= alpha <= 1:
            raise ValueError(f"mask alpha must be between 0 and 1, not {alpha}")
        self._masks.append((classes, float(alpha), background))

    def _draw_mask(self, classes: Any, alpha: float, background: int | None) -> None:
        import numpy as np
        from PIL import Image

        indices = np.asarray(classes)
        if indices.ndim != 2:
            raise ValueError(f"a mask is one class index per pixel (H x W), not of shape {indices.shape}")
        indices = indices.astype(np.int32)
        if indices.shape[::-1] != self.image.size:
            indices = np.asarray(Image.fromarray(indices).resize(self.image.size, Image.Resampling.NEAREST))
        pixels = np.asarray(self.image, dtype=np.float32)
        colours = np.asarray(PALETTE, dtype=np.float32)[indices % len(PALETTE)]
        shown = (indices != background if background is not None else np.ones_like(indices, bool))[..., None]
        blended = np.where(shown, pixels * (1 - alpha) + colours * alpha, pixels)
        self.image.paste(Image.fromarray(blended.round().clip(0, 255).astype(np.uint8)))

    def _draw_caption(self, line: int, text: str) -> None:
        height = self.draw.textbbox((0, 0), "Ag", font=self.font)[3] + 3 * self.unit
        self._text((2 * self.unit, 2 * self.unit + line * height), text, (0, 0, 0))

    def _draw_box(self, box: Sequence[float], label: str, color: tuple[int, int, int]) -> None:
        x1, y1, x2, y2 = box
        self.draw.rectangle((x1, y1, x2, y2), outline=color, width=2 * self.unit)
        text_height = self.draw.textbbox((0, 0), label, font=self.font)[3]
        top = y1 - text_height - 2 * self.unit if y1 - text_height - 2 * self.unit >= 0 else y1 + 2 * self.unit
        self._text((x1 + self.unit, top), label, color)

    def _draw_points(self, points: list[Sequence[float]], color: tuple[int, int, int]) -> None:
        radius = 2 * self.unit + 1
        for x, y in points:
            self.draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=color,
                              outline=(0, 0, 0), width=max(1, self.unit // 2))

    def png(self) -> bytes:
        """The annotated image as PNG bytes."""
        for mask in self._masks:
            self._draw_mask(*mask)
        for line, text in enumerate(self._captions):
            self._draw_caption(line, text)
        for box in self._boxes:
            self._draw_box(*box)
        for points in self._points:
            self._draw_points(*points)
        self._captions, self._boxes, self._points, self._masks = [], [], [], []
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return buffer.getvalue()


def luminance(rgb: Sequence[float]) -> float:
    """Relative luminance (WCAG), 0 to 1, of an sRGB colour given as 0-255 values."""
    linear = [c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def text_color(fill: Sequence[float]) -> tuple[int, int, int]:
    """Black or white, whichever contrasts more with ``fill``: readable text on any cell or label colour."""
    return (0, 0, 0) if luminance(fill) > 0.179 else (255, 255, 255)


def color(index: int) -> tuple[int, int, int]:
    """A distinct colour per class index."""
    return PALETTE[index % len(PALETTE)]
