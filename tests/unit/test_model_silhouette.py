"""The shaded silhouette (model/silhouette.py) on small hand-drawn images."""

from __future__ import annotations

import pytest
import torch

from stylesearch.model.silhouette import (
    FLOOR_LEVEL,
    MASK_THRESHOLD,
    background,
    fill_thin_holes,
    garment_mask,
    shaded_silhouette,
    shading_floor,
    stretch_shading,
)


def _image(size: int = 64, bg: tuple[float, float, float] = (235.0, 232.0, 238.0)) -> torch.Tensor:
    """A ``(1, 3, size, size)`` image of the colour ``bg`` on the 0..255 scale."""
    return torch.tensor(bg).view(1, 3, 1, 1).expand(1, 3, size, size).clone()


def _paint(img: torch.Tensor, rows: slice, cols: slice, rgb: tuple[float, ...]) -> None:
    img[0, :, rows, cols] = torch.tensor(rgb).view(3, 1, 1)


def test_the_background_is_the_median_of_the_border():
    img = _image()
    _paint(img, slice(0, 1), slice(0, 10), (0.0, 0.0, 0.0))  # a few dark border pixels
    _paint(img, slice(20, 40), slice(20, 40), (200.0, 30.0, 35.0))
    assert background(img).flatten().tolist() == [235.0, 232.0, 238.0]


def test_the_background_is_the_borders_most_frequent_colour_not_a_shaded_garment():
    # a shaded red garment fills rows 0-63 of columns 0-49: it covers 4 x 50 + 2 x 60 = 320 of
    # the border's 496 pixels, so the border's median is the garment's. Its shading changes
    # every row (red 150 + row, in steps of 8 a new colour every 8 rows), so no colour of it
    # covers more than 112 border pixels (the bottom two rows' 100 and 12 of the left side's),
    # while the background (columns 50-63) covers 176.
    img = _image()
    for row in range(64):
        _paint(img, slice(row, row + 1), slice(0, 50), (150.0 + row, 30.0, 35.0))
    assert background(img).flatten().tolist() == [235.0, 232.0, 238.0]
    # the background's pixels one step apart still count as one colour, their median is read
    _paint(img, slice(0, 2), slice(50, 64), (233.0, 234.0, 236.0))
    assert background(img).flatten().tolist() == [235.0, 232.0, 238.0]


def test_the_mask_keeps_pixels_that_differ_by_more_than_the_threshold():
    img = _image()
    _paint(img, slice(10, 12), slice(10, 12), (235.0, 232.0 - MASK_THRESHOLD, 238.0))
    _paint(img, slice(20, 22), slice(20, 22), (235.0 + MASK_THRESHOLD + 1, 232.0, 238.0))
    mask = garment_mask(img)[0, 0]
    assert float(mask.sum()) == 4.0  # only the second square: 15 is not above 15
    assert float(mask[20:22, 20:22].min()) == 1.0


def test_thin_holes_are_filled_and_wide_ones_kept():
    mask = torch.zeros(1, 1, 40, 40)
    mask[0, 0, 5:35, 5:35] = 1.0
    mask[0, 0, 10:12, 8:30] = 0.0  # a 2-pixel light stripe: pattern, filled
    mask[0, 0, 18:28, 18:28] = 0.0  # a 10 x 10 gap: a 7 x 7 window fits, kept
    filled = fill_thin_holes(mask, 3)[0, 0]
    assert float(filled[10:12, 8:30].min()) == 1.0
    assert float(filled[18:28, 18:28].max()) == 0.0
    assert float(filled.sum()) == 30 * 30 - 100
    # a gap open to the image's border is background, however thin
    open_gap = torch.zeros(1, 1, 40, 40)
    open_gap[0, 0, 5:35, 5:35] = 1.0
    open_gap[0, 0, 0:20, 19:21] = 0.0
    assert torch.equal(fill_thin_holes(open_gap, 3), open_gap)


def test_a_stripe_of_a_wide_gap_stays_with_it():
    mask = torch.zeros(1, 1, 40, 40)
    mask[0, 0, 5:35, 5:35] = 1.0
    mask[0, 0, 18:28, 18:28] = 0.0  # wide gap
    mask[0, 0, 22:24, 8:18] = 0.0  # a thin channel joined to it: the same hole
    filled = fill_thin_holes(mask, 3)[0, 0]
    assert float(filled[22:24, 8:28].max()) == 0.0


def test_shading_is_relative_and_patterns_drop_out():
    img = _image()
    _paint(img, slice(10, 50), slice(10, 50), (200.0, 40.0, 40.0))  # red garment
    _paint(img, slice(10, 50), slice(30, 50), (100.0, 20.0, 20.0))  # its right half in shade
    for r in range(12, 48, 4):  # dark stripes (2 px every 4) across the left half
        _paint(img, slice(r, r + 2), slice(10, 30), (90.0, 18.0, 18.0))
    out = shaded_silhouette(img)[0, 0]
    # outside the garment and on its eroded one-pixel edge: 0
    assert float(out[:11].abs().max()) == 0.0 and float(out[:, 49:].abs().max()) == 0.0
    # the left half: its lighter tone everywhere, stripes gone
    assert float(out[11:49, 11:25].min()) == pytest.approx(1.0)
    # the right half, beyond the 4-pixel tone window of the left: half as bright
    assert out[11:49, 35:49].unique().tolist() == [pytest.approx(0.5)]


def test_the_same_shape_in_two_colours_gives_the_same_silhouette():
    shapes = []
    for rgb in ((200.0, 30.0, 35.0), (35.0, 90.0, 210.0)):
        img = _image()
        _paint(img, slice(10, 50), slice(20, 44), rgb)
        _paint(img, slice(30, 50), slice(20, 44), tuple(0.7 * c for c in rgb))
        shapes.append(shaded_silhouette(img))
    torch.testing.assert_close(shapes[0], shapes[1])


def test_radii_scale_with_the_image_size():
    img = _image(128)
    _paint(img, slice(20, 100), slice(20, 100), (30.0, 30.0, 32.0))
    out = shaded_silhouette(img)[0, 0]
    # 128 px: the one-pixel outline of a 64 px image is two pixels here
    assert float(out[21].max()) == 0.0 and float(out[22, 22:98].min()) == pytest.approx(1.0)


def test_the_shading_floor_is_a_quantile_of_the_garment_tones():
    tones = torch.tensor([1.0, 0.2, 0.8, 0.4, 0.6])
    # sorted 0.2 .. 1.0 in steps of 0.2; the 2 % quantile lies 0.08 of the way from the first
    # to the second value (linear interpolation): 0.2 + 0.08 * 0.2
    assert shading_floor(tones) == pytest.approx(0.216)
    assert shading_floor(tones, 0.5) == pytest.approx(0.6)
    assert shading_floor(torch.ones(3)) == pytest.approx(0.99)  # kept below 1
    assert shading_floor(torch.zeros(0)) == 0.0  # no garment pixel


def test_stretched_shading_maps_the_floor_to_the_floor_level_and_keeps_the_background():
    shaded = torch.tensor([[[[0.0, 0.4, 0.5, 0.75, 1.0]]]])
    out = stretch_shading(shaded, 0.5)[0, 0, 0]
    # (s - 0.5) / 0.5 clamped to [0, 1]: 0, 0, 0.5, 1 -> 0.1 + 0.9 x that
    expected = [0.0, FLOOR_LEVEL, FLOOR_LEVEL, FLOOR_LEVEL + 0.45, 1.0]
    assert out.tolist() == pytest.approx(expected)
    assert stretch_shading(shaded, 0.0)[0, 0, 0].tolist() == pytest.approx(
        [0.0, 0.46, 0.55, 0.775, 1.0]
    )
    with pytest.raises(ValueError, match="shading floor"):
        stretch_shading(shaded, 1.0)
