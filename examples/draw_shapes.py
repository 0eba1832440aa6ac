"""Draw small image folders for `make demo` and the benchmarks, laid out as the PyTorch transfer-learning
tutorial's hymenoptera_data is (DIR/train/<class>/N.png, DIR/val/<class>/N.png).

    python examples/draw_shapes.py DIR [--per-class 48] [--size 64]             # blue and red squares on grey
    python examples/draw_shapes.py DIR --figures [--per-class 300] [--size 64]  # four shapes to tell apart

The squares differ by colour (trivial: for checking that things run); the figures (square, circle, triangle,
cross in random colours, sizes and places over noisy lines) need a model to learn shape, and a fresh resnet18
learns them to about 95% in 8 epochs: enough to compare training or quantisation by accuracy.
"""
from __future__ import annotations

import argparse
import random
from collections.abc import Mapping
from pathlib import Path

TWO_CLASSES = {"blue": (40, 40, 210), "red": (210, 40, 40)}


def draw(root: Path, per_class: int = 48, size: int = 64, classes: Mapping[str, tuple[int, int, int]] = TWO_CLASSES,
         val_per_class: int | None = None) -> Path:
    """One folder per class in ``classes`` (name -> square colour), under train/ and val/ (a quarter as many)."""
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    for split, count in (("train", per_class), ("val", val_per_class or max(2, per_class // 4))):
        for name, color in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = Image.new("RGB", (size + rng.randrange(size // 2), size), (rng.randrange(80, 180),) * 3)
                x, y = rng.randrange(size // 2), rng.randrange(size // 2)
                ImageDraw.Draw(image).rectangle([x, y, x + size // 3, y + size // 3], fill=color)
                image.save(folder / f"{i}.png")
    return root


SHAPES = ("square", "circle", "triangle", "cross")


def _figure(draw, shape: str, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> None:
    left, top, right, bottom = box
    if shape == "square":
        draw.rectangle(box, fill=color)
    elif shape == "circle":
        draw.ellipse(box, fill=color)
    elif shape == "triangle":
        draw.polygon([((left + right) // 2, top), (right, bottom), (left, bottom)], fill=color)
    else:
        third = (right - left) // 3
        draw.rectangle([left + third, top, right - third, bottom], fill=color)
        draw.rectangle([left, top + third, right, bottom - third], fill=color)


def draw_figures(root: Path, per_class: int, size: int, seed: int = 0) -> Path:
    """root/{train,val}/<shape>/N.png: one figure per image, colour and place random, over noisy lines."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    for split, count in (("train", per_class), ("val", max(8, per_class // 3))):
        for shape in SHAPES:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = Image.new("RGB", (size, size), tuple(rng.randrange(60, 200) for _ in range(3)))
                draw = ImageDraw.Draw(image)
                for _ in range(3):
                    draw.line([rng.randrange(size) for _ in range(4)], fill=tuple(rng.randrange(256) for _ in range(3)))
                side = rng.randrange(size // 2, 3 * size // 4)
                x, y = rng.randrange(size - side), rng.randrange(size - side)
                _figure(draw, shape, (x, y, x + side, y + side), tuple(rng.randrange(256) for _ in range(3)))
                image.save(folder / f"{i}.png")
    return root


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--per-class", type=int, default=48)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--figures", action="store_true", help="Four shapes in random colours (a third as many in val/).")
    args = parser.parse_args()
    print(draw_figures(args.folder, args.per_class, args.size) if args.figures else draw(args.folder, args.per_class,
                                                                                        args.size))
