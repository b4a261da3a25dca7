"""The shaded silhouette of a product photo on a plain background: shape and shading, no colour.

Product photos (packshots) show the garment on a plain, light background. This module recovers
what such a photo carries about the garment's shape, without its colour or pattern:

1. **background**: the image's outer ``BORDER`` pixels' most frequent colour (each channel in
   steps of ``BACKGROUND_STEP``), as the per-channel median of the border pixels of that colour.
   A plain background is one colour while a garment's shading varies, so a garment that
   covers much of the border (a bag that fills the frame) is not taken for the background;
2. **garment mask**: pixels whose largest channel difference from the background exceeds
   ``MASK_THRESHOLD`` (on the 0..255 scale);
3. **holes**: regions the mask encloses are filled when they are thin (a light stripe, dot or
   check of the pattern, which is close to the background), and kept when a disc of radius
   ``HOLE_RADIUS`` fits in them (the real gap between a sandal's straps or a bag's handle);
4. **outline**: the mask is eroded by ``OUTLINE`` pixels, which removes the photo's thin shadow
   outline and the anti-aliased edge;
5. **shading**: each garment pixel's brightest channel, replaced by its maximum over a window of
   radius ``TONE_RADIUS`` inside the garment (the lighter tone of a two-tone pattern is
   present in every such window, so stripes and dots drop out while folds and dark parts stay),
   divided by the garment's maximum, so a light and a dark garment of one shape agree.

The result is 0 outside the garment and the relative shading, in (0, 1], inside it. Radii are
given for 64-pixel images and scale with the image size. Every step is a fixed image operation
(max pooling on a batch), nothing is learned.

Divided by its maximum, the shading of an evenly lit packshot stays in a narrow range near 1, so
beside the mask's step from 0 to about 1 it weighs little.
:func:`stretch_shading` stretches it from a **shading floor**, the tone below which only
``FLOOR_QUANTILE`` of a catalog's garment pixels fall (:func:`shading_floor`, one number fitted
on the catalog's images), to [``FLOOR_LEVEL``, 1]; the garment stays ``FLOOR_LEVEL`` or more, apart
from the background's 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "BACKGROUND_STEP",
    "BORDER",
    "FLOOR_LEVEL",
    "FLOOR_QUANTILE",
    "HOLE_RADIUS",
    "MASK_THRESHOLD",
    "OUTLINE",
    "TONE_RADIUS",
    "background",
    "fill_thin_holes",
    "garment_mask",
    "shaded_silhouette",
    "shading_floor",
    "silhouette_mask",
    "stretch_shading",
]

#: width in pixels of the image border the background is read from
BORDER = 2
#: step (0..255 scale) in which the border's colours are counted to find the most frequent
BACKGROUND_STEP = 8.0
#: largest channel difference from the background (0..255) above which a pixel is garment
MASK_THRESHOLD = 15.0
#: an enclosed hole is kept as background when a disc of this radius (64 px images) fits in it
HOLE_RADIUS = 3
#: pixels eroded from the mask's edge (64 px images)
OUTLINE = 1
#: radius of the window the lighter tone of a pattern is taken over (64 px images)
TONE_RADIUS = 4
#: share of a catalog's garment pixels whose shading is below its shading floor
FLOOR_QUANTILE = 0.02
#: the stretched shading of a garment pixel at or below the floor
FLOOR_LEVEL = 0.1
#: garment pixels :func:`shading_floor` reads at most, an even sample beyond that (torch.quantile
#: takes at most 2 ** 24 values)
FLOOR_PIXELS = 4_000_000


def _px(radius: float, size: int) -> int:
    """A radius given for 64-pixel images, in pixels of a ``size``-pixel image (at least 1)."""
    return max(1, round(radius * size / 64.0))


def _dilate(x: Tensor, radius: int) -> Tensor:
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)


def _erode(x: Tensor, radius: int) -> Tensor:
    return -F.max_pool2d(-x, 2 * radius + 1, stride=1, padding=radius)


def _grow_within(seed: Tensor, region: Tensor) -> Tensor:
    """The pixels of ``region`` connected (8-neighbourhood) to ``seed``: both ``(B, 1, H, W)``
    in {0, 1}."""
    seed = seed * region
    for _ in range(seed.shape[-2] * seed.shape[-1]):
        grown = _dilate(seed, 1) * region
        if torch.equal(grown, seed):
            break
        seed = grown
    return seed


def background(rgb: Tensor) -> Tensor:
    """``(B, 3, H, W)`` on the 0..255 scale -> ``(B, 3, 1, 1)``: the per-channel median of the
    outer ``BORDER`` pixels whose colour, in steps of ``BACKGROUND_STEP``, is the border's
    most frequent."""
    b = BORDER
    ring = torch.cat(
        [rgb[:, :, :b].flatten(2), rgb[:, :, -b:].flatten(2),
         rgb[:, :, b:-b, :b].flatten(2), rgb[:, :, b:-b, -b:].flatten(2)], dim=2,
    )  # fmt: skip
    steps = (ring.clamp(0.0, 255.0) / BACKGROUND_STEP).floor()
    levels = math.floor(255.0 / BACKGROUND_STEP) + 1
    code = (steps[:, 0] * levels + steps[:, 1]) * levels + steps[:, 2]
    common = (code == code.mode(dim=1).values[:, None])[:, None]
    return torch.where(common, ring, float("nan")).nanmedian(dim=2).values[:, :, None, None]


def garment_mask(
    rgb: Tensor, threshold: float | Tensor = MASK_THRESHOLD, back: Tensor | None = None
) -> Tensor:
    """``(B, 3, H, W)`` on the 0..255 scale -> ``(B, 1, H, W)`` in {0, 1}: 1 where any channel
    differs from the background (``back``, :func:`background` read here when not given) by
    more than ``threshold`` (one number, or one per image ``(B,)``)."""
    back = background(rgb) if back is None else back
    diff = (rgb - back).abs().amax(dim=1, keepdim=True)
    if isinstance(threshold, Tensor):
        threshold = threshold.to(diff).view(-1, 1, 1, 1)
    return (diff > threshold).to(rgb.dtype)


def fill_thin_holes(mask: Tensor, radius: int) -> Tensor:
    """Fill the holes of ``mask`` ``(B, 1, H, W)`` (regions not connected to the image border)
    in which no disc of ``radius`` fits; wider holes, and everything connected to them, stay."""
    edge = torch.zeros_like(mask)
    edge[..., 0, :] = edge[..., -1, :] = edge[..., :, 0] = edge[..., :, -1] = 1
    outside = _grow_within(edge, 1 - mask)
    holes = 1 - mask - outside
    wide = _dilate(_erode(holes, radius), radius) * holes
    return mask + holes - _grow_within(wide, holes)


def silhouette_mask(
    rgb: Tensor, threshold: float | Tensor = MASK_THRESHOLD, back: Tensor | None = None
) -> Tensor:
    """``(B, 3, H, W)`` RGB on the 0..255 scale -> ``(B, 1, H, W)`` in {0, 1}: the garment mask
    (:func:`garment_mask` at ``threshold``, against ``back``) with its thin holes filled and its
    outline eroded (steps 1-4 of the module's docstring)."""
    size = rgb.shape[-1]
    mask = garment_mask(rgb, threshold, back)
    return _erode(fill_thin_holes(mask, _px(HOLE_RADIUS, size)), _px(OUTLINE, size))


def shaded_silhouette(rgb: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB on the 0..255 scale -> ``(B, 1, H, W)``: 0 off the garment, its
    relative shading in (0, 1] on it (steps 1-5 of the module's docstring)."""
    size = rgb.shape[-1]
    mask = silhouette_mask(rgb)
    tone = _dilate(rgb.amax(dim=1, keepdim=True) * mask, _px(TONE_RADIUS, size)) * mask
    peak = tone.flatten(1).amax(dim=1).clamp_min(1.0)
    return tone / peak[:, None, None, None]


def shading_floor(tones: Tensor, quantile: float = FLOOR_QUANTILE) -> float:
    """The ``quantile`` of ``tones``, the garment pixels' shading in a catalog's shaded
    silhouettes (:func:`shaded_silhouette`, its values above 0): the catalog's shading floor,
    in [0, 0.99]; 0 without a tone (every image is its plain background, and its look is 0
    whatever the floor)."""
    tones = tones.flatten().float()
    if tones.numel() == 0:
        return 0.0
    if tones.numel() > FLOOR_PIXELS:
        tones = tones[:: -(-tones.numel() // FLOOR_PIXELS)]
    return min(max(float(torch.quantile(tones, quantile)), 0.0), 0.99)


def stretch_shading(shaded: Tensor, floor: float) -> Tensor:
    """``shaded`` (:func:`shaded_silhouette`) with its shading stretched from ``floor`` to 1:
    ``FLOOR_LEVEL + (1 - FLOOR_LEVEL) * clamp((s - floor) / (1 - floor), 0, 1)`` on the garment
    (``s > 0``), 0 off it."""
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"a shading floor is in [0, 1), got {floor}")
    stretched = ((shaded - floor) / (1.0 - floor)).clamp(0.0, 1.0)
    return torch.where(shaded > 0, FLOOR_LEVEL + (1.0 - FLOOR_LEVEL) * stretched, 0.0)
