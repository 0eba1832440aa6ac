"""Draw a small two-class image folder (blue and red squares on grey) for `make demo` and the benchmarks.

    python examples/draw_shapes.py DIR [--per-class 48] [--size 64]

writes DIR/train/{blue,red}/N.png and DIR/val/{blue,red}/N.png (a quarter as many), as the PyTorch
transfer-learning tutorial's hymenoptera_data is laid out.
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--per-class", type=int, default=48)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    print(draw(args.folder, args.per_class, args.size))
