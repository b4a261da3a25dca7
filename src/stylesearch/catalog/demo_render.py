"""Turn one greyscale Fashion-MNIST garment into colour product images (the demo catalog).

The garment's grey image gives its silhouette (alpha) and its shading; the pattern is drawn at
the output size (after upscaling, so stripes and dots stay sharp), multiplied by the shading and
composited on a light background with a thin shadow outline (so white garments stay visible).
Extra views of the same item move, scale, rotate and brighten the garment and change the
background, like the other photos of a product.

Everything here is a pure function of its inputs and the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
import textwrap
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: sRGB of each canonical colour (the keys of ``demo_text.COLOURS``, same order).
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 35),
    "orange": (240, 120, 20),
    "yellow": (245, 205, 35),
    "green": (40, 150, 60),
    "blue": (35, 90, 210),
    "purple": (120, 50, 160),
    "pink": (240, 130, 180),
    "brown": (115, 70, 35),
    "black": (30, 30, 32),
    "white": (248, 248, 248),
    "grey": (135, 135, 135),
    "beige": (215, 190, 150),
}

#: the patterns this module draws (the keys of ``demo_text.PATTERNS``, same order).
PATTERN_NAMES: tuple[str, ...] = ("solid", "striped", "dotted", "checked", "floral", "zigzag")

#: shading keeps this much of the colour in the darkest garment pixels (1.0 = no shading).
SHADE_FLOOR = 0.6


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(yy, xx)``, each ``(size, size) float32``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    return yy, xx


def second_colour(rgb: tuple[int, int, int]) -> np.ndarray:
    """The pattern's second tone: a light tint of a dark colour, a dark shade of a light one."""
    c = np.asarray(rgb, dtype=np.float32)
    lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    return c + (255.0 - c) * 0.75 if lum < 140 else c * 0.45


def _band(v: np.ndarray, period: float, width: float) -> np.ndarray:
    """Anti-aliased coverage of bands of ``width`` repeating every ``period`` along ``v``."""
    d = np.abs(np.mod(v, period) - period / 2)
    return np.clip(width / 2 - d + 0.5, 0.0, 1.0)


def pattern_weight(pattern: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Where the second tone goes: ``(size, size) float32`` in [0, 1] (0 = main colour)."""
    yy, xx = _grid(size)
    u = size / 64.0
    if pattern == "solid":
        return np.zeros((size, size), np.float32)
    if pattern == "striped":
        period = 8.0 * u * rng.uniform(0.9, 1.15)
        v = yy if rng.random() < 0.5 else xx
        return _band(v + rng.uniform(0, period), period, 0.42 * period)
    if pattern == "zigzag":
        period = 8.0 * u * rng.uniform(0.95, 1.1)
        px = 11.0 * u
        tri = np.abs(np.mod(xx + rng.uniform(0, px), px) - px / 2) / (px / 2)
        return _band(yy + 4.0 * u * tri + rng.uniform(0, period), period, 0.45 * period)
    if pattern == "checked":
        cell = 5.5 * u * rng.uniform(0.9, 1.15)
        ax = _band(xx + rng.uniform(0, 2 * cell), 2 * cell, cell)
        ay = _band(yy + rng.uniform(0, 2 * cell), 2 * cell, cell)
        return ax + ay - 2 * ax * ay
    if pattern == "dotted":
        period = 8.0 * u
        y = yy + rng.uniform(0, period)
        row = np.floor(y / period)
        x = xx + rng.uniform(0, period) + np.mod(row, 2) * (period / 2)
        ly = np.mod(y, period) - period / 2
        lx = np.mod(x, period) - period / 2
        return np.clip(1.9 * u - np.sqrt(lx * lx + ly * ly) + 0.5, 0.0, 1.0)
    if pattern == "floral":
        period = 14.0 * u
        y = yy + rng.uniform(0, period)
        x = xx + rng.uniform(0, period)
        n = int(math.ceil(size / period)) + 2
        jitter = rng.uniform(-1.5 * u, 1.5 * u, size=(n, n, 2)).astype(np.float32)
        iy = np.floor(y / period).astype(np.int64) % n
        ix = np.floor(x / period).astype(np.int64) % n
        ly = np.mod(y, period) - period / 2 - jitter[iy, ix, 0]
        lx = np.mod(x, period) - period / 2 - jitter[iy, ix, 1]
        theta0 = rng.uniform(0, 2 * math.pi)
        petals = np.zeros((size, size), np.float32)
        for k in range(5):
            a = theta0 + k * 2 * math.pi / 5
            dy, dx = ly - 2.7 * u * math.sin(a), lx - 2.7 * u * math.cos(a)
            petal = np.clip(1.8 * u - np.sqrt(dx * dx + dy * dy) + 0.5, 0.0, 1.0)
            petals = np.maximum(petals, petal)
        centre = np.clip(1.0 * u - np.sqrt(lx * lx + ly * ly) + 0.5, 0.0, 1.0)
        return np.maximum(petals, 0.6 * centre)
    raise ValueError(f"unknown pattern {pattern!r}; choose one of {PATTERN_NAMES}")


def upscale(grey: np.ndarray, size: int) -> np.ndarray:
    """A ``(28, 28) uint8`` garment as ``(size, size) float32`` in [0, 1], max-normalised."""
    img = Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8), mode="L")
    up = np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    peak = float(up.max())
    return up / peak if peak > 0 else up / 255.0


def silhouette(g: np.ndarray) -> np.ndarray:
    """The garment's coverage (alpha) in [0, 1] from its upscaled grey image (:func:`upscale`)."""
    return np.clip((g - 0.03) / 0.12, 0.0, 1.0)


def garment(
    grey: np.ndarray, colour: str, pattern: str, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied colour ``(size, size, 3) float32`` (0..255) and alpha ``(size, size)``."""
    g = upscale(grey, size)
    alpha = silhouette(g)
    c1 = np.asarray(COLOUR_RGB[colour], dtype=np.float32)
    c2 = second_colour(COLOUR_RGB[colour])
    w = pattern_weight(pattern, size, rng)[..., None]
    field = c1 * (1.0 - w) + c2 * w
    shade = SHADE_FLOOR + (1.0 - SHADE_FLOOR) * g
    return field * (shade * alpha)[..., None], alpha


def background(rng: np.random.Generator, *, view: bool) -> np.ndarray:
    """A light, nearly neutral background colour ``(3,) float32``; views vary it more."""
    if view:
        return rng.uniform(205, 248) + rng.uniform(-6, 6, size=3).astype(np.float32)
    return rng.uniform(228, 240) + rng.uniform(-4, 4, size=3).astype(np.float32)


def compose(prem: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Composite a premultiplied garment over ``bg`` with a thin shadow outline: uint8 RGB."""
    pad = np.pad(alpha, 1)
    h, w = alpha.shape
    dil = alpha.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            np.maximum(dil, pad[dy : dy + h, dx : dx + w], out=dil)
    edge = np.clip(dil - alpha, 0.0, 1.0)
    back = bg[None, None, :] * (1.0 - 0.35 * edge)[..., None]
    out = prem + (1.0 - alpha)[..., None] * back
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def view(
    prem: np.ndarray, alpha: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Another photo of the same garment: small shift, scale, rotation and brightness change."""
    size = alpha.shape[0]
    u = size / 64.0
    angle = math.radians(rng.uniform(-10, 10))
    scale = rng.uniform(0.9, 1.1)
    tx, ty = rng.uniform(-3 * u, 3 * u, size=2)
    bright = rng.uniform(0.85, 1.15)
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    ctr = size / 2
    a, b, d, e = cos, sin, -sin, cos
    c = ctr - a * (ctr + tx) - b * (ctr + ty)
    f = ctr - d * (ctr + tx) - e * (ctr + ty)
    rgba = np.concatenate([prem, alpha[..., None] * 255.0], axis=2)
    src = Image.frombytes("RGBa", (size, size), np.clip(rgba + 0.5, 0, 255).astype(np.uint8))
    out = src.transform(
        (size, size), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR
    )
    arr = np.frombuffer(out.tobytes(), dtype=np.uint8).reshape(size, size, 4)
    arr = arr.astype(np.float32)
    new_alpha = arr[..., 3] / 255.0
    return np.minimum(arr[..., :3] * bright, new_alpha[..., None] * 255.0), new_alpha


def sample_grid(
    tiles: list[tuple[np.ndarray, str]], *, cols: int = 6, tile: int = 128, lines: int = 4
) -> Image.Image:
    """A contact sheet: each ``(uint8 RGB image, title)`` upscaled to ``tile`` px, title below."""
    font = ImageFont.load_default()
    line_h = 12
    chars = max(8, tile // 6)
    cell_w, cell_h = tile + 8, tile + 8 + lines * line_h
    rows = max(1, math.ceil(len(tiles) / cols))
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (img, title) in enumerate(tiles):
        x0, y0 = (i % cols) * cell_w + 4, (i // cols) * cell_h + 4
        pic = Image.fromarray(img).resize((tile, tile), Image.Resampling.NEAREST)
        sheet.paste(pic, (x0, y0))
        wrapped = textwrap.wrap(title, width=chars)[:lines]
        for j, text in enumerate(wrapped):
            draw.text((x0, y0 + tile + 2 + j * line_h), text, fill=(20, 20, 20), font=font)
    return sheet
