"""What `zoo predict --out` draws: captions sized to the image (a line of a 48 px image, not a quarter of it)
and masks overlaid in class colours, blended with the image, background left as it was."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageChops

from zoo.drawing import PALETTE, Canvas


def _drawn(canvas: Canvas) -> Image.Image:
    return Image.open(io.BytesIO(canvas.png())).convert("RGB")


@pytest.mark.parametrize("size", [48, 64, 300])
def test_a_caption_covers_a_small_share_of_a_small_image(size):
    image = Image.new("RGB", (size, size), (128, 128, 128))
    canvas = Canvas(image)
    canvas.caption("cls2: red 0.97")
    left, top, right, bottom = ImageChops.difference(_drawn(canvas), image).getbbox()
    assert (right - left) * (bottom - top) < 0.12 * size * size
    assert bottom - top >= 6  # still a readable line


def test_large_images_keep_captions_that_grow_with_them():
    assert Canvas(Image.new("RGB", (1200, 900))).font_size > Canvas(Image.new("RGB", (300, 300))).font_size >= 12


def test_a_mask_blends_class_colours_over_the_image_and_leaves_background():
    image = Image.new("RGB", (4, 2), (100, 100, 100))
    canvas = Canvas(image)
    canvas.mask([[0, 1, 2, 2], [0, 0, 1, 12]], alpha=0.5)
    pixels = np.asarray(_drawn(canvas)).astype(int)
    expected = lambda index: np.round((np.array(PALETTE[index % len(PALETTE)]) + 100) / 2)  # noqa: E731
    assert (pixels[0, 0] == 100).all() and (pixels[1, 1] == 100).all()
    assert (pixels[0, 1] == expected(1)).all() and (pixels[0, 3] == expected(2)).all()
    assert (pixels[1, 3] == expected(12)).all()


def test_a_smaller_mask_is_stretched_over_the_image_by_nearest_class():
    import torch

    canvas = Canvas(Image.new("RGB", (40, 20), (0, 0, 0)))
    canvas.mask(torch.tensor([[0, 3]]), alpha=1.0)
    pixels = np.asarray(_drawn(canvas))
    assert (pixels[:, :20] == 0).all() and (pixels[:, 20:] == PALETTE[3]).all()


def test_a_mask_that_is_not_one_index_per_pixel_is_refused():
    canvas = Canvas(Image.new("RGB", (4, 4)))
    canvas.mask(np.zeros((2, 2, 3), int))
    with pytest.raises(ValueError, match="one class index per pixel"):
        canvas.png()
    with pytest.raises(ValueError, match="alpha"):
        canvas.mask([[1]], alpha=2)
