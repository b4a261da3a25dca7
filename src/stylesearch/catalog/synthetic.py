"""A small generated catalog of coloured shapes with noisy titles, for tests and smoke runs.

Each item is one shape in one colour with one pattern on a light background, with a little
random jitter in position, size and tint. Its title and description come from a few templates
that mix the attribute words (colour adjective, pattern adjective, shape noun) with non-visual
noise (brands, sizes, care instructions). A fraction ``missing_rate`` of titles leaves out one
attribute and a fraction ``wrong_rate`` names a wrong colour, like real, imperfect metadata.

Files written under ``out_dir``::

    manifest.jsonl          one catalog row per item (relative image paths)
    truth.jsonl             {"id", "shape", "colour", "pattern"}: the clean attributes
    images/<id>.png         the main view
    images/<id>-b.png       a second view, slightly shifted (the row's ``extra_images``)

The output is byte-for-byte identical for the same arguments.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["COLOURS", "PATTERNS", "SHAPES", "make_shapes_catalog"]

#: shape nouns (as they appear in titles)
SHAPES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "diamond",
    "heart",
)
#: colour adjectives -> base RGB
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 30, 35),
    "green": (40, 150, 60),
    "blue": (35, 70, 200),
    "yellow": (240, 200, 25),
    "purple": (125, 45, 160),
    "orange": (245, 125, 20),
    "pink": (240, 115, 170),
    "black": (25, 25, 25),
    "grey": (125, 125, 125),
    "brown": (115, 70, 30),
}
#: pattern adjectives
PATTERNS: tuple[str, ...] = ("solid", "striped", "dotted")

_BRANDS = ("Acme", "Nordwell", "Kestrel", "Lumen", "Vanta", "Orla", "Brightside", "Mosscot")
_SIZES = ("XS", "S", "M", "L", "XL")
_NOISE = (
    "Machine washable",
    "Cotton blend",
    "New season",
    "Limited edition",
    "A great gift idea",
    "Slim fit",
    "Made from recycled fabric",
    "Free returns",
)
_MATERIALS = ("cotton", "linen", "wool", "polyester", "organic")
_SUPERSAMPLE = 4


def _shape_mask(shape: str, size: int, cx: float, cy: float, r: float) -> Image.Image:
    """An ``L`` mask (255 inside the shape) of ``size`` x ``size`` pixels."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    elif shape == "square":
        h = 0.8 * r
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=255)
    elif shape == "triangle":
        draw.polygon(
            [(cx, cy - r), (cx + 0.95 * r, cy + 0.7 * r), (cx - 0.95 * r, cy + 0.7 * r)], fill=255
        )
    elif shape == "star":
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else 0.42 * r
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        draw.polygon(points, fill=255)
    elif shape == "cross":
        w = 0.32 * r
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=255)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=255)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        inner = 0.55 * r
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + 0.7 * r, cy), (cx, cy + r), (cx - 0.7 * r, cy)], fill=255)
    elif shape == "heart":
        lobe = 0.5 * r
        for dx in (-0.45 * r, 0.45 * r):
            x, y = cx + dx, cy - 0.3 * r
            draw.ellipse((x - lobe, y - lobe, x + lobe, y + lobe), fill=255)
        draw.polygon(
            [(cx - 0.93 * r, cy - 0.15 * r), (cx + 0.93 * r, cy - 0.15 * r), (cx, cy + r)], fill=255
        )
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask


def _pattern_masks(size: int, image_size: int) -> dict[str, np.ndarray]:
    """Boolean ``(size, size)`` masks of the pixels a pattern paints white."""
    period = max(4, image_size // 8) * _SUPERSAMPLE
    y, x = np.mgrid[0:size, 0:size]
    stripes = ((x + y) // (period // 2)) % 2 == 1
    dx = (x % period) - period / 2
    dy = (y % period) - period / 2
    dots = dx * dx + dy * dy < (period * 0.28) ** 2
    return {"solid": np.zeros((size, size), dtype=bool), "striped": stripes, "dotted": dots}


def _render(
    shape: str,
    rgb: np.ndarray,
    background: np.ndarray,
    pattern: np.ndarray,
    centre: tuple[float, float],
    radius: float,
    image_size: int,
) -> Image.Image:
    """Draw one view at ``_SUPERSAMPLE`` x resolution and box-downsample it (antialiasing)."""
    size = image_size * _SUPERSAMPLE
    scale = _SUPERSAMPLE * image_size
    mask = _shape_mask(shape, size, centre[0] * scale, centre[1] * scale, radius * scale)
    inside = np.asarray(mask) > 127
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = background
    canvas[inside] = rgb
    canvas[inside & pattern] = (250, 250, 250)
    return Image.fromarray(canvas, mode="RGB").resize(
        (image_size, image_size), Image.Resampling.BOX
    )


def _sentence(words: list[str | None]) -> str:
    text = " ".join(w for w in words if w)
    return text[:1].upper() + text[1:]


def _title(rng: np.random.Generator, colour: str | None, pattern: str | None, shape: str) -> str:
    brand = str(rng.choice(_BRANDS))
    size = str(rng.choice(_SIZES))
    template = int(rng.integers(4))
    if template == 0:
        return _sentence([colour, pattern, shape, "by", brand])
    if template == 1:
        return _sentence([brand, pattern, shape, *(["in", colour] if colour else [])])
    if template == 2:
        return _sentence([pattern, colour, shape]) + f", size {size}"
    return _sentence([brand, colour, shape, *(["with", pattern, "print"] if pattern else [])])


def _description(
    rng: np.random.Generator, colour: str | None, pattern: str | None, shape: str
) -> str:
    noise = [str(n) for n in rng.choice(_NOISE, size=2, replace=False)]
    kind = int(rng.integers(3))
    if kind == 0:
        return ""
    if kind == 1:
        return f"{noise[0]}. {noise[1]}."
    about = _sentence(["A", pattern, shape, *(["in", colour] if colour else [])])
    return f"{about}. {noise[0]}."


def make_shapes_catalog(
    out_dir: str | os.PathLike[str],
    n_items: int = 800,
    *,
    seed: int = 0,
    image_size: int = 64,
    missing_rate: float = 0.1,
    wrong_rate: float = 0.05,
) -> Path:
    """Generate the shapes catalog under ``out_dir`` and return ``out_dir/manifest.jsonl``.

    Args:
        out_dir: created if needed; existing files of the same names are overwritten.
        n_items: number of items (ids ``shape-00000`` ...).
        seed: everything (attributes, jitter, titles) derives from this seed.
        image_size: side of the square PNG images, in pixels.
        missing_rate: fraction of titles (and descriptions) that leave out one attribute word.
        wrong_rate: fraction of titles (and descriptions) that name a wrong colour.
    """
    if n_items < 1 or image_size < 8:
        raise ValueError("n_items must be >= 1 and image_size >= 8")
    if not (0.0 <= missing_rate <= 1.0 and 0.0 <= wrong_rate <= 1.0):
        raise ValueError("missing_rate and wrong_rate must be in [0, 1]")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    patterns = _pattern_masks(image_size * _SUPERSAMPLE, image_size)
    colour_names = list(COLOURS)
    rows: list[str] = []
    truths: list[str] = []
    for i in range(n_items):
        item_id = f"shape-{i:05d}"
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = colour_names[int(rng.integers(len(colour_names)))]
        pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
        rgb = np.clip(np.array(COLOURS[colour]) + rng.integers(-12, 13, 3), 0, 255)
        background = np.clip(rng.integers(232, 251) + rng.integers(-5, 6, 3), 0, 255)
        radius = float(rng.uniform(0.27, 0.36))
        centre = (0.5 + float(rng.uniform(-0.08, 0.08)), 0.5 + float(rng.uniform(-0.08, 0.08)))
        shift = rng.uniform(0.03, 0.06, 2) * rng.choice([-1.0, 1.0], 2)
        centre_b = (centre[0] + float(shift[0]), centre[1] + float(shift[1]))
        radius_b = radius * float(rng.uniform(0.92, 1.05))
        paths = (f"images/{item_id}.png", f"images/{item_id}-b.png")
        views = ((centre, radius), (centre_b, radius_b))
        for rel, (c, r) in zip(paths, views, strict=True):
            image = _render(shape, rgb, background, patterns[pattern], c, r, image_size)
            image.save(out / rel, format="PNG")

        said: dict[str, str | None] = {"colour": colour, "pattern": pattern, "shape": shape}
        noise = float(rng.random())
        if noise < missing_rate:
            said[("colour", "pattern", "shape")[int(rng.integers(3))]] = None
        elif noise < missing_rate + wrong_rate:
            others = [c for c in colour_names if c != colour]
            said["colour"] = others[int(rng.integers(len(others)))]
        noun = said["shape"] or "design"
        row: dict[str, object] = {
            "id": item_id,
            "image": paths[0],
            "title": _title(rng, said["colour"], said["pattern"], noun),
            "description": _description(rng, said["colour"], said["pattern"], noun),
            "extra_images": [paths[1]],
        }
        if rng.random() < 0.3:
            row["attributes"] = [str(rng.choice(_MATERIALS))]
        rows.append(json.dumps(row))
        truths.append(
            json.dumps({"id": item_id, "shape": shape, "colour": colour, "pattern": pattern})
        )
    (out / "truth.jsonl").write_text("\n".join(truths) + "\n", encoding="utf-8")
    manifest = out / "manifest.jsonl"
    manifest.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return manifest
