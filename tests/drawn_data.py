"""Small labelled data sets drawn with PIL, in every format zoo train reads."""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

COLORS = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}


def class_folders(root: Path, classes=("blue", "red"), per_class: int = 6, splits=("train", "val")) -> Path:
    """root/<split>/<class>/N.png: a coloured square on a grey background of varying size and shade."""
    rng = random.Random(0)
    for split in splits:
        for name in classes:
            folder = root / split / name if split else root / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                image = Image.new("RGB", (40 + rng.randrange(24), 40 + rng.randrange(8)), (rng.randrange(90, 160),) * 3)
                x, y = rng.randrange(4, 12), rng.randrange(4, 12)
                ImageDraw.Draw(image).rectangle([x, y, x + 22, y + 22], fill=COLORS[name])
                image.save(folder / f"{i}.png")
    return root


def keypoint_table(root: Path, count: int = 12, suffix: str = ".csv") -> Path:
    """One white dot per image; the table gives its centre in pixels (columns image, x0, y0)."""
    rng = random.Random(1)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        width, height = 48 + rng.randrange(16), 48
        x, y = rng.randrange(8, width - 8), rng.randrange(8, height - 8)
        image = Image.new("RGB", (width, height), (20, 20, 20))
        ImageDraw.Draw(image).ellipse([x - 5, y - 5, x + 5, y + 5], fill=(255, 255, 255))
        image.save(root / f"dot{i}.png")
        rows.append({"image": f"dot{i}.png", "x0": x, "y0": y})
    return _write(root / f"points{suffix}", rows)


def age_gender_table(root: Path, count: int = 12) -> Path:
    """Age as brightness, gender as the shape's colour (columns image, age, gender)."""
    rng = random.Random(2)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        age, gender = rng.randrange(5, 90), rng.choice(["male", "female"])
        image = Image.new("RGB", (48, 48), (age * 2, age * 2, age * 2))
        ImageDraw.Draw(image).rectangle([12, 12, 36, 36], fill=COLORS["red" if gender == "female" else "blue"])
        image.save(root / f"face{i}.png")
        rows.append({"image": f"face{i}.png", "age": age, "gender": gender})
    return _write(root / "faces.csv", rows)


def coco(root: Path, count: int = 6) -> Path:
    """A red box on each image, in COCO JSON with one category, 'box'."""
    rng = random.Random(3)
    root.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        image = Image.new("RGB", (64, 64), (120, 120, 120))
        x, y, w, h = rng.randrange(4, 24), rng.randrange(4, 24), rng.randrange(16, 32), rng.randrange(16, 32)
        ImageDraw.Draw(image).rectangle([x, y, x + w, y + h], fill=COLORS["red"])
        image.save(root / f"scene{i}.png")
        images.append({"id": i + 1, "file_name": f"scene{i}.png", "width": 64, "height": 64})
        annotations.append({"id": i + 1, "image_id": i + 1, "category_id": 7, "bbox": [x, y, w, h], "area": w * h,
                            "iscrowd": 0})
    path = root / "boxes.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 7, "name": "box"}]}))
    return path


def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".csv":
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
