"""The shaded silhouette read per pixel: a plain garment's own shading, a pattern's tones apart.

:func:`stylesearch.model.silhouette.shaded_silhouette` gives each garment pixel the brightest
tone within ``TONE_RADIUS``. That drops a pattern's stripes and dots, but it also spreads every
light fold over its neighbours, so the shading inside the garment comes out blurred. This module
keeps each pixel's own shading where it can:

1. **garment mask**: :func:`~stylesearch.model.silhouette.silhouette_mask`, as
   :func:`~stylesearch.model.silhouette.shaded_silhouette` reads it, except on a *light,
   neutral* garment (white, light grey): its colour (below) at least ``LIGHT`` times the
   background's brightest channel, and the channels of its mean colour within ``NEUTRAL`` of
   each other. Its lightest parts are within ``MASK_THRESHOLD`` of the background, so it is
   masked at ``LIGHT_MASK_THRESHOLD`` instead. A low threshold for every garment would take in
   the soft shadow at other garments' edges.
2. **plain or patterned**: a garment's inner pixel (the mask eroded by ``INNER`` pixels) is
   *textured* when it differs from the mean luminance around it (a Gaussian of
   ``TEXTURE_SIGMA`` pixels, within the garment) by more than ``TEXTURE_CONTRAST`` of it. A
   print's two tones differ far more than a garment's shading does between neighbouring
   pixels. A garment is *patterned* when at least ``PLAIN_TEXTURE`` of its inner pixels are
   textured and they are spread over it: at least ``PATTERN_SPREAD`` of its inner pixels lie
   within ``TEXTURE_REACH`` of one. Else it is *plain*. A print covers the whole garment; a
   dark, plain garment's see-through parts (straps, a handle), whose blends with the light
   background are textured too, lie in a few places.
3. **background blend**: where a garment is thinner than a pixel (its outline, a seam, the gap
   in a strap) or lets the background through, the photo mixes it with the background. On a
   plain garment whose colour stands apart from the background's (``CHROMATIC``), each pixel
   is split into the two colours (:func:`colour_share`): a pixel with some background in it
   reads as the garment colour's share alone, so a half-transparent part reads dark, as the
   garment there is thin, not as light as the background. The garment's colour is the
   per-channel median of its inner pixels' colours, each scaled to a brightest channel of 1.
   On a plain, dark garment of no such colour (black, dark grey: its colour, the
   ``COLOUR_QUANTILE`` of its inner pixels' brightest channel, below ``DARK`` times the
   background's) a blend is told by its brightness alone: a pixel brighter than the garment's
   colour can be has the share of garment ``(background - value) / (background - colour)``,
   times the colour. On a patterned garment the lighter tone of the print is as light as a
   blend, so nothing is changed there.
4. **tones**: a plain garment's pixels keep their own value (brightest channel, after step 3).
   On a patterned one, a pixel within ``GAP`` of the background in every channel is a gap
   (the background seen between its parts, which the mask's hole filling took in), not a tone
   of the print: it is read from its neighbours, as the print's other tone is. Each other pixel
   is compared with the brightest pixel within ``TONE_RADIUS`` (its lighter tone). It keeps its
   own brightest channel when the two colours point the same way (cosine above
   ``SAME_COLOUR``) and it is at least ``SAME_TONE`` as bright. A pixel of the print's other
   tone is read as its brightest channel times the print's tone ratio (:func:`tone_ratio`)
   when it is at least ``OTHER_TONE_MARGIN`` times darker than its lighter tone and, so
   scaled, lands within ``SAME_TONE`` to ``OTHER_TONE_CAP`` times it; both tones then show the
   garment's own shading. Any other pixel (a tone's anti-aliased edge, a gap) takes the mean of
   the read pixels around it (a Gaussian of ``FILL_SIGMA`` pixels), or its lighter tone where
   none is near.
5. **relative shading**: the result divided by the brightest pixel read in step 4 (a filled
   one cannot set it), at most 1.

Radii are given for 64-pixel images and scale with the image size. Nothing is learned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from stylesearch.model.silhouette import (
    MASK_THRESHOLD,
    TONE_RADIUS,
    _dilate,
    _erode,
    _px,
    background,
    garment_mask,
    silhouette_mask,
)

__all__ = [
    "BLEND_MARGIN",
    "CHROMATIC",
    "COLOUR_QUANTILE",
    "DARK",
    "FILL_SIGMA",
    "GAP",
    "INNER",
    "LIGHT",
    "LIGHT_MASK_THRESHOLD",
    "LUMA",
    "NEUTRAL",
    "OTHER_TONE_CAP",
    "OTHER_TONE_MARGIN",
    "PATTERN_SPREAD",
    "PLAIN_TEXTURE",
    "SAME_COLOUR",
    "SAME_TONE",
    "TEXTURE_CONTRAST",
    "TEXTURE_REACH",
    "TEXTURE_SIGMA",
    "TONE_WINDOW",
    "TWO_TONES",
    "colour_share",
    "gaussian_blur",
    "gaussian_kernel",
    "light_neutral",
    "luminance",
    "pixel_shading",
    "texture",
    "tone_ratio",
    "unblend",
]

#: a garment is light at or above this share of the background's brightest channel
LIGHT = 0.75
#: a garment is neutral when its mean colour's channels differ by less than this share
NEUTRAL = 0.05
#: mask threshold (0..255) of a light, neutral garment
LIGHT_MASK_THRESHOLD = 4.0

#: pixels eroded from the garment mask to give its inner pixels (64 px images)
INNER = 2
#: standard deviation in pixels of the neighbourhood a pixel's luminance is compared with
TEXTURE_SIGMA = 1.5
#: relative luminance difference from the neighbourhood above which a pixel is textured
TEXTURE_CONTRAST = 0.12
#: a garment with fewer textured inner pixels than this share is plain
PLAIN_TEXTURE = 0.15
#: radius in pixels (64 px images) within which an inner pixel is near a textured one
TEXTURE_REACH = 3
#: a garment with fewer of its inner pixels near a textured one than this share is plain
PATTERN_SPREAD = 0.85
#: quantile of the inner pixels' brightest channel taken as a plain garment's colour
COLOUR_QUANTILE = 0.9
#: a plain garment's pixels are split into its colour and the background's when the squared
#: sine of the angle between the two colours is above this (about 13 degrees)
CHROMATIC = 0.05
#: a plain garment of no such colour is dark, and its background blends are undone by
#: brightness, below this share of the background's brightest channel
DARK = 0.7
#: a pixel this much brighter than a dark plain garment's colour is a blend with the background
BLEND_MARGIN = 1.05
#: cosine between a pixel's colour and its lighter tone's above which they are one tone
SAME_COLOUR = 0.98
#: share of its lighter tone's brightness a pixel of the same tone reaches at least
SAME_TONE = 0.75
#: a patterned garment's pixel within this of the background in every channel (0..255) is a gap
GAP = 4.0
#: radius in pixels (64 px images) of the windows in which a print's two tones are compared
TONE_WINDOW = 2
#: a window holds both tones of a print when its brightest pixel is this many times its darkest
TWO_TONES = 1.15
#: a pixel is of the print's other tone only when its lighter tone is this many times brighter
OTHER_TONE_MARGIN = 1.05
#: ... and when, times the tone ratio, it is at most this many times its lighter tone
OTHER_TONE_CAP = 1.05
#: standard deviation in pixels of the mean that fills a print's other tone
FILL_SIGMA = 1.0
#: ITU-R BT.601 luma weights of R, G, B
LUMA = (0.299, 0.587, 0.114)


def gaussian_kernel(sigma: float) -> Tensor:
    """A normalised 1-D Gaussian of standard deviation ``sigma``, radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def gaussian_blur(x: Tensor, sigma: float, padding: str = "constant") -> Tensor:
    """``(B, 1, H, W)`` blurred by a separable Gaussian of ``sigma`` pixels; outside the image
    it is zero (``padding="constant"``) or its edge repeated (``"replicate"``)."""
    k = gaussian_kernel(sigma).to(x)
    r = len(k) // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=padding), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=padding), k.view(1, 1, -1, 1))


def luminance(rgb: Tensor) -> Tensor:
    """``(B, 3, H, W)`` -> ``(B, 1, H, W)``: the ``LUMA``-weighted sum of the channels."""
    return (rgb * torch.tensor(LUMA, device=rgb.device).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _masked_mean(x: Tensor, mask: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """The Gaussian-weighted mean of ``x`` over ``mask`` around each pixel, and the weight."""
    weight = gaussian_blur(mask, sigma)
    return gaussian_blur(x * mask, sigma) / weight.clamp_min(1e-3), weight


def _inner(mask: Tensor) -> Tensor:
    inner = _erode(mask, _px(INNER, mask.shape[-1]))
    thin = inner.flatten(1).sum(1) == 0  # too thin to erode: the whole mask is inner
    return torch.where(thin[:, None, None, None], mask, inner)


def _colour(value: Tensor, inner: Tensor) -> Tensor:
    """``(B,)``: the ``COLOUR_QUANTILE`` of ``value`` over each image's ``inner`` pixels, NaN
    where there are none."""
    picked = torch.where(inner > 0, value, float("nan")).flatten(1)
    return torch.nanquantile(picked, COLOUR_QUANTILE, dim=1)


def light_neutral(rgb: Tensor, back: Tensor | None = None) -> Tensor:
    """``(B,)`` bool: which garments are light and neutral (step 1), read on the inner pixels
    of the garment mask at ``MASK_THRESHOLD`` (``back``: the background, read here when not
    given)."""
    back = background(rgb) if back is None else back
    mask = garment_mask(rgb, MASK_THRESHOLD, back)
    inner = _erode(mask, _px(INNER, rgb.shape[-1]))
    colour = _colour(rgb.amax(dim=1, keepdim=True), inner)
    mean = (rgb * inner).flatten(2).sum(2) / inner.flatten(1).sum(1, keepdim=True).clamp_min(1.0)
    spread = (mean.amax(1) - mean.amin(1)) / mean.amax(1).clamp_min(1.0)
    light = colour >= LIGHT * back.amax(dim=1).flatten()
    return light & (spread < NEUTRAL)


def texture(rgb: Tensor, mask: Tensor, inner: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(B,)`` twice (step 2), for each garment of ``mask`` ``(B, 1, H, W)``: the share of its
    inner pixels (``mask`` eroded by ``INNER``, or ``inner`` when given) whose luminance
    differs from its neighbourhood's by more than ``TEXTURE_CONTRAST``, and the share of its
    inner pixels within ``TEXTURE_REACH`` of such a pixel; 0 and 0 for an empty mask."""
    luma = luminance(rgb)
    sigma = TEXTURE_SIGMA * rgb.shape[-1] / 64.0
    around, _ = _masked_mean(luma, mask, sigma)
    inner = _inner(mask) if inner is None else inner
    textured = ((luma - around).abs() > TEXTURE_CONTRAST * around.clamp_min(1.0)).to(rgb.dtype)
    textured = textured * inner
    near = _dilate(textured, _px(TEXTURE_REACH, rgb.shape[-1])) * inner
    count = inner.flatten(1).sum(1).clamp_min(1.0)
    return textured.flatten(1).sum(1) / count, near.flatten(1).sum(1) / count


def colour_share(rgb: Tensor, inner: Tensor, back: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Each pixel of ``rgb`` ``(B, 3, H, W)`` split into the garment's colour and the
    background's ``back`` ``(B, 3, 1, 1)`` by least squares: ``rgb = share x colour + rest x
    back``, the colour the per-channel median over ``inner`` of the pixels' colours scaled to
    a brightest channel of 1. Returns ``share`` (at least 0) and ``rest`` ``(B, 1, H, W)`` and,
    ``(B,)`` bool, whether the split is well posed: the two colours' squared sine above
    ``CHROMATIC``."""
    scaled = rgb / rgb.amax(dim=1, keepdim=True).clamp_min(1.0)
    picked = torch.where(inner > 0, scaled, float("nan")).flatten(2)
    colour = picked.nanmedian(dim=2).values.nan_to_num(1.0)[:, :, None, None]
    colour = colour / colour.amax(dim=1, keepdim=True).clamp_min(1e-6)
    cc = (colour * colour).sum(1, keepdim=True)
    cb = (colour * back).sum(1, keepdim=True)
    bb = (back * back).sum(1, keepdim=True)
    det = cc * bb - cb * cb
    rc = (rgb * colour).sum(1, keepdim=True)
    rb = (rgb * back).sum(1, keepdim=True)
    share = ((rc * bb - rb * cb) / det.clamp_min(1e-6)).clamp_min(0.0)
    rest = (rb * cc - rc * cb) / det.clamp_min(1e-6)
    posed = (det / (cc * bb).clamp_min(1e-6)).flatten() > CHROMATIC
    return share, rest, posed


def unblend(
    rgb: Tensor,
    mask: Tensor,
    value: Tensor,
    inner: Tensor | None = None,
    back: Tensor | None = None,
) -> Tensor:
    """Step 3 on every garment of the batch: ``value`` (the brightest channel ``(B, 1, H, W)``)
    with the background blends undone, by colour (:func:`colour_share`) where the garment's
    colour stands apart from the background's, else by brightness on dark garments
    (``inner``: the mask's inner pixels, eroded here when not given; ``back``: the
    background, read here when not given)."""
    back = background(rgb) if back is None else back
    inner = _inner(mask) if inner is None else inner
    share, rest, posed = colour_share(rgb, inner, back)
    by_colour = torch.where(rest > 0, share, value)
    light = back.amax(dim=1, keepdim=True)
    colour = _colour(value, inner).nan_to_num(255.0)[:, None, None, None]
    dark = colour < DARK * light
    blend = (value > BLEND_MARGIN * colour) & dark & (mask > 0)
    ratio = ((light - value) / (light - colour).clamp_min(1.0)).clamp(0.0, 1.0)
    by_brightness = torch.where(blend, colour * ratio, value)
    return torch.where(posed[:, None, None, None], by_colour, by_brightness)


def tone_ratio(value: Tensor, read: Tensor, inner: Tensor) -> Tensor:
    """``(B, 1, 1, 1)``: how many times brighter a print's lighter tone is than its other, the
    median over the ``inner`` pixels of the brightest over the darkest ``value`` among the
    ``read`` pixels within ``TONE_WINDOW`` (both ``(B, 1, H, W)``), taken where that exceeds
    ``TWO_TONES`` (a window with both tones, whose shading is nearly one); 1 where none does."""
    r = _px(TONE_WINDOW, value.shape[-1])
    darkest = _erode(torch.where(read > 0, value, math.inf), r)
    brightest = _dilate(value * read, r)
    ratio = brightest / darkest.clamp_min(1.0)
    both = (inner * read > 0) & (ratio > TWO_TONES)  # no read pixel near: darkest inf, ratio 0
    picked = torch.where(both, ratio, float("nan")).flatten(1)
    return picked.nanmedian(dim=1).values.nan_to_num(1.0)[:, None, None, None]


def pixel_shading(rgb: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB on the 0..255 scale -> ``(B, 1, H, W)``: 0 off the garment, its
    relative shading in (0, 1] on it, read per pixel (steps 1-5 of the module's docstring)."""
    size = rgb.shape[-1]
    back = background(rgb)
    threshold = torch.where(light_neutral(rgb, back), LIGHT_MASK_THRESHOLD, MASK_THRESHOLD)
    mask = silhouette_mask(rgb, threshold, back)
    value = rgb.amax(dim=1, keepdim=True)
    inner = _inner(mask)
    share, spread = texture(rgb, mask, inner)
    plain = ((share < PLAIN_TEXTURE) | (spread < PATTERN_SPREAD))[:, None, None, None]
    gap = (garment_mask(rgb, GAP, back) == 0) & ~plain
    readable = mask * ~gap
    rows = plain.flatten().nonzero().flatten()  # a print keeps its blends (step 3)
    if len(rows):
        value = value.index_put(
            (rows,), unblend(rgb[rows], mask[rows], value[rows], inner[rows], back[rows])
        )
    value = value * readable
    radius = _px(TONE_RADIUS, size)
    lighter, at = F.max_pool2d(value, 2 * radius + 1, stride=1, padding=radius, return_indices=True)
    b, c, h, w = rgb.shape
    colour = torch.gather(rgb.flatten(2), 2, at.flatten(2).expand(-1, c, -1)).view(b, c, h, w)
    alike = F.cosine_similarity(rgb, colour, dim=1, eps=1e-6).unsqueeze(1) > SAME_COLOUR
    same = alike & (value >= SAME_TONE * lighter)
    scaled = value * tone_ratio(value, readable, inner)
    other = (
        ~same & ~plain & (OTHER_TONE_MARGIN * value < lighter)
        & (scaled >= SAME_TONE * lighter) & (scaled <= OTHER_TONE_CAP * lighter)
    )  # fmt: skip
    kept = (same | other | plain).to(value.dtype) * readable
    read = torch.where(other, scaled, value)
    around, weight = _masked_mean(read, kept, FILL_SIGMA * size / 64.0)
    filled = torch.where(weight > 1e-3, around, lighter)
    tone = torch.where(kept > 0, read, filled) * mask
    peak = (tone * kept).flatten(1).amax(dim=1).clamp_min(1.0)
    return (tone / peak[:, None, None, None]).clamp(max=1.0)
