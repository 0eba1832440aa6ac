"""How the built-in heads read their training targets from a table row (`zoo.targets.TargetReader`):
a class index, key points in pixels, age and gender, each given a `zoo.targets.TargetContext`. A bad value
raises ValueError for people."""
from __future__ import annotations


def read_class(row, context):
    """The ``label`` column: a class index below the head's size."""
    size = context.size
    text = str(row["label"]).strip()
    if not text.lstrip("-").isdigit() or not 0 <= int(text) < max(size, 2):
        raise ValueError(f"label {text!r} must be a class index from 0 to {max(size, 2) - 1}")
    return int(text)


def point_columns(context):
    """x0, y0, x1, y1, ... for a head of ``size`` points."""
    return [f"{axis}{i}" for i in range(context.size) for axis in ("x", "y")]


def read_points(row, context):
    """Points in the image's pixels become fractions of its width and height, as the head predicts them."""
    import torch

    size, (width, height) = context.size, context.image_size
    points = []
    for i in range(size):
        try:
            x, y = float(row[f"x{i}"]), float(row[f"y{i}"])
        except (TypeError, ValueError):
            raise ValueError(f"point {i} ({row[f'x{i}']}, {row[f'y{i}']}) is not a pair of numbers") from None
        if not (0 <= x <= width and 0 <= y <= height):
            raise ValueError(f"point {i} ({x:g}, {y:g}) lies outside the {width}x{height} image")
        points.append((x / width, y / height))
    return torch.tensor(points, dtype=torch.float32)


GENDER_NAMES = {"0": 0, "1": 1, "male": 0, "m": 0, "female": 1, "f": 1}


def read_age_gender(row, context):
    """The ``age`` (years, not negative) and ``gender`` (0/1, male/female, m/f) columns."""
    try:
        age = float(row["age"])
    except (TypeError, ValueError):
        raise ValueError(f"age {row['age']!r} is not a number") from None
    if not age >= 0:
        raise ValueError(f"age {age:g} is negative")
    gender = GENDER_NAMES.get(str(row["gender"]).strip().lower())
    if gender is None:
        raise ValueError(f"gender {row['gender']!r} must be 0/1 or male/female")
    return {"age": age, "gender": float(gender)}
