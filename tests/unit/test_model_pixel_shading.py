"""The shaded silhouette read per pixel (model/pixel_shading.py), against hand-computed values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from stylesearch.catalog.transforms import IMAGENET_MEAN, IMAGENET_STD
from stylesearch.model.look import GRID, ShapeLook
from stylesearch.model.pixel_shading import (
    PATTERN_SPREAD,
    PLAIN_TEXTURE,
    colour_share,
    gaussian_blur,
    light_neutral,
    pixel_shading,
    texture,
    tone_ratio,
)
from stylesearch.model.silhouette import garment_mask, shaded_silhouette, stretch_shading

# every garment below covers rows and columns 8-55 of a 64 px image on a light background; its
# mask (eroded by the one-pixel outline) is rows and columns 9-54
INSIDE = (slice(9, 55), slice(9, 55))


def _image(garment: torch.Tensor, back: float = 230.0) -> torch.Tensor:
    """``garment`` ``(3, 48, 48)`` (0..255) at rows and columns 8-55 of a 64 px background."""
    rgb = torch.full((1, 3, 64, 64), back)
    rgb[0, :, 8:56, 8:56] = garment
    return rgb


def _rows(values: torch.Tensor) -> torch.Tensor:
    """A grey garment whose 48 rows have ``values``."""
    return values.view(1, 48, 1).expand(3, 48, 48).clone()


def _stripes(light: tuple[float, ...], dark: tuple[float, ...]) -> torch.Tensor:
    """A garment of colour ``light`` with rows 2-4 of every 8 in colour ``dark``."""
    garment = torch.tensor(light).view(3, 1, 1).expand(3, 48, 48).clone()
    for top in range(0, 48, 8):
        garment[:, top + 2 : top + 5] = torch.tensor(dark).view(3, 1, 1)
    return garment


def test_gaussian_blur_keeps_a_constant_inside_and_sums_to_one():
    x = torch.zeros(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0
    blurred = gaussian_blur(x, 1.0)
    assert float(blurred.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float(blurred[0, 0, 10, 10]) == pytest.approx(float(blurred.max()))
    assert float(gaussian_blur(torch.ones(1, 1, 21, 21), 1.0)[0, 0, 10, 10]) == pytest.approx(1.0)


def test_a_smoothly_shaded_garment_is_plain_and_a_striped_one_is_not():
    smooth = _image(_rows(80.0 + torch.arange(8, 56.0) / 2))
    striped = _image(_stripes((200.0, 100.0, 50.0), (90.0, 45.0, 22.5)))
    assert [float(x[0]) for x in texture(smooth, garment_mask(smooth))] == [0.0, 0.0]
    share, spread = texture(striped, garment_mask(striped))
    assert float(share[0]) > PLAIN_TEXTURE and float(spread[0]) > PATTERN_SPREAD


def test_a_dark_garment_seen_through_in_one_corner_is_plain():
    # a black garment whose top-left 24 x 24 pixels show the background's blend at every third
    # row and column (a mesh): a quarter of its inner pixels are textured, all in that corner
    garment = torch.tensor((30.0, 30.0, 32.0)).view(3, 1, 1).expand(3, 48, 48).clone()
    mesh = (torch.arange(24).view(24, 1) % 3 == 0) & (torch.arange(24).view(1, 24) % 3 == 0)
    garment[:, :24, :24] = torch.where(mesh, 150.0, garment[:, :24, :24])
    rgb = _image(garment)
    share, spread = texture(rgb, garment_mask(rgb))
    assert float(share[0]) > 0.2  # the old rule (0.2 textured) called it patterned
    assert float(spread[0]) < PATTERN_SPREAD
    shading = pixel_shading(rgb)[0, 0]
    # plain: the solid part reads its own value, 32, over the brightest read, 32; a pattern's
    # reading would take the mesh's 150 as the lighter tone and read the solid part at 0.21
    assert float(shading[45, 45]) == pytest.approx(1.0)


def test_a_plain_garment_keeps_each_pixels_own_shading():
    # row r of the garment has value 80 + r / 2 (rows 8-55); the mask's rows 9-54 go up to 107.
    # Its colour (the 90 % quantile of the inner rows 11-52, about 104) is dark, but no pixel is
    # more than 5 % above it, so nothing is unblended: each pixel reads (80 + r / 2) / 107.
    rgb = _image(_rows(80.0 + torch.arange(8, 56.0) / 2))
    shading = pixel_shading(rgb)[0, 0]
    expected = ((80.0 + torch.arange(9, 55.0) / 2) / 107.0).view(46, 1).expand(46, 46)
    torch.testing.assert_close(shading[INSIDE], expected)
    assert float(shading[:9].abs().max()) == 0.0 and float(shading[55:].abs().max()) == 0.0
    # the window's maximum spreads each row's tone over the 4 rows above it
    blurred = shaded_silhouette(rgb)[0, 0]
    assert float(blurred[20, 30]) == pytest.approx((80.0 + 12.0) / 107.0)
    assert float(shading[20, 30]) == pytest.approx((80.0 + 10.0) / 107.0)


def test_a_background_blend_in_a_dark_plain_garment_reads_as_its_share_of_garment():
    # a garment of 40 on 230 with a seam in column 30 half background: 0.5 x 40 + 0.5 x 230 =
    # 135. The seam's textured neighbours (columns 28-32) are 5 of the 42 inner columns, so the
    # garment is plain; its colour is 40, and the seam's share of garment is
    # (230 - 135) / (230 - 40) = 0.5: it reads 0.5 x 40 = 20 against the garment's 40.
    garment = torch.full((3, 48, 48), 40.0)
    garment[:, :, 30 - 8] = 135.0
    shading = pixel_shading(_image(garment))[0, 0]
    assert float(shading[9:55, 30].min()) == pytest.approx(0.5)
    assert float(shading[9:55, 30].max()) == pytest.approx(0.5)
    rest = torch.cat([shading[9:55, 9:30], shading[9:55, 31:55]], dim=1)
    assert float(rest.min()) == pytest.approx(1.0) and float(rest.max()) == pytest.approx(1.0)
    # read by the window's maximum, the seam is the garment's lightest part
    assert float(shaded_silhouette(_image(garment))[0, 0, 30, 30]) == pytest.approx(1.0)


def test_a_pixel_splits_into_the_garments_colour_and_the_backgrounds():
    # pink (240, 130, 180) scaled to a brightest channel of 1 is (1, 0.5417, 0.75); half of it
    # over a background of 230 is (235, 180, 205) = 120 x colour + 0.5 x background
    back = torch.full((1, 3, 1, 1), 230.0)
    rgb = torch.tensor([[240.0, 130.0, 180.0], [235.0, 180.0, 205.0]]).T.reshape(1, 3, 1, 2)
    inner = torch.tensor([[1.0, 0.0]]).view(1, 1, 1, 2)
    share, rest, posed = colour_share(rgb, inner, back)
    torch.testing.assert_close(share.flatten(), torch.tensor([240.0, 120.0]), atol=1e-3, rtol=0)
    torch.testing.assert_close(rest.flatten(), torch.tensor([0.0, 0.5]), atol=1e-5, rtol=0)
    assert posed.tolist() == [True]
    # a grey garment's colour points the background's way: no split
    grey = torch.full((1, 3, 1, 2), 100.0)
    assert colour_share(grey, inner, back)[2].tolist() == [False]


@pytest.mark.parametrize(
    "colour, seam, reads",
    [
        # light pink, half background: (235, 180, 205) is as bright as the garment, yet it is
        # 120 x its colour: it reads 120 / 240
        ((240.0, 130.0, 180.0), (235.0, 180.0, 205.0), 120.0 / 240.0),
        # green, 0.54 x its colour + 0.1 x background: (44.6, 104, 55.4) is no brighter than the
        # garment's 150, yet it is 81 x its colour: it reads 81 / 150
        ((40.0, 150.0, 60.0), (44.6, 104.0, 55.4), 81.0 / 150.0),
    ],
)
def test_a_blend_in_a_coloured_plain_garment_reads_as_its_share_of_the_colour(colour, seam, reads):
    garment = torch.tensor(colour).view(3, 1, 1).expand(3, 48, 48).clone()
    garment[:, :, 30 - 8] = torch.tensor(seam).view(3, 1)
    shading = pixel_shading(_image(garment))[0, 0]
    torch.testing.assert_close(shading[9:55, 30], torch.full((46,), reads), atol=1e-4, rtol=0)
    rest = torch.cat([shading[9:55, 9:30], shading[9:55, 31:55]], dim=1)
    assert float(rest.min()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "light, dark",
    [
        ((200.0, 100.0, 50.0), (90.0, 45.0, 22.5)),  # a darker tone of one colour (x 0.45)
        ((200.0, 30.0, 35.0), (241.0, 198.0, 199.0)),  # a lighter tint of red
    ],
)
def test_a_prints_other_tone_takes_the_shading_of_the_tone_around_it(light, dark):
    # evenly lit: every garment pixel of either tone reads 1
    rgb = _image(_stripes(light, dark))
    shading = pixel_shading(rgb)[0, 0]
    assert float(shading[INSIDE].min()) == pytest.approx(1.0)
    assert float(shading[INSIDE].max()) == pytest.approx(1.0)


def test_the_tone_ratio_is_the_lighter_tone_over_the_other_where_a_window_holds_both():
    # columns 4 px wide of 200 and 30: every 5 x 5 window holds both tones, 200 / 30; a pixel
    # that is not read (of value 1 here) does not count as the darker tone
    value = torch.full((2, 1, 64, 64), 30.0)
    for left in range(0, 64, 8):
        value[0, :, :, left : left + 4] = 200.0
    value[0, :, 30, 30] = 1.0
    # one tone whose shading varies by far less than TWO_TONES within a window: no ratio
    value[1] = 100.0 + torch.arange(64.0).view(1, 1, 64) / 10
    read = torch.ones_like(value)
    read[0, :, 30, 30] = 0.0
    ratio = tone_ratio(value, read, read)
    assert float(ratio[0]) == pytest.approx(200 / 30)
    assert float(ratio[1]) == 1.0


def test_both_tones_of_a_dark_print_read_its_shading_and_a_gap_is_not_its_peak():
    # a black print (rows of 30 among rows of a 200 tint) shaded from 1 at the top to 0.7 at
    # the bottom, the background showing through one pixel. The dark rows read as 30 x the tone
    # ratio (200 / 30), so both tones show the shading; the gap is read from its neighbours and
    # cannot be the peak, which would read the whole garment 200 / 230 as dark (0.87 at the top)
    shade = 1.0 - 0.3 * torch.arange(48.0) / 47
    rgb = _image(_stripes((200.0,) * 3, (30.0,) * 3) * shade.view(1, 48, 1))
    rgb[0, :, 30, 30] = 230.0
    shading = pixel_shading(rgb)[0, 0][INSIDE]
    expected = (shade / shade[1])[1:47].view(46, 1).expand(46, 46)  # the mask starts at row 1
    assert float((shading - expected).abs().max()) < 0.02


def test_a_batch_reads_each_garment_as_it_reads_it_alone():
    # the seamed dark plain garment above (its seam unblended to 0.5) and a red print, in either
    # order: only the plain one is unblended, and neither changes the other's reading
    plain = torch.full((3, 48, 48), 40.0)
    plain[:, :, 30 - 8] = 135.0
    images = [_image(plain), _image(_stripes((200.0, 30.0, 35.0), (241.0, 198.0, 199.0)))]
    alone = [pixel_shading(rgb) for rgb in images]
    assert float(alone[0][0, 0, 30, 30]) == pytest.approx(0.5)
    for order in ((0, 1), (1, 0)):
        together = pixel_shading(torch.cat([images[i] for i in order]))
        for row, i in enumerate(order):
            assert torch.equal(together[row], alone[i][0])


def test_an_empty_image_reads_zero():
    assert not pixel_shading(torch.full((2, 3, 64, 64), 200.0)).any()


def test_the_pixel_shading_look_stretches_the_pixel_shading_from_the_floor():
    rgb = _image(_rows(80.0 + torch.arange(8, 56.0) / 2))
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    look = ShapeLook(64, 4, "pixel-shading")
    look.fit_floor(torch.tensor([0.5]))
    grid = look.grid((rgb / 255.0 - mean) / std)
    expected = F.interpolate(
        stretch_shading(pixel_shading(rgb), 0.5), size=(GRID, GRID), mode="area"
    )
    torch.testing.assert_close(grid, expected.flatten(1), atol=1e-4, rtol=0)


def test_a_light_plain_garment_keeps_its_light_pixels():
    # a garment of 200 on 230 is not dark (200 > 0.7 x 230): a lighter seam of 210 is its own
    # tone, not a blend, and reads 1 against the garment's 200 / 210
    garment = torch.full((3, 48, 48), 200.0)
    garment[:, :, 30 - 8] = 210.0
    shading = pixel_shading(_image(garment))[0, 0]
    assert float(shading[30, 30]) == pytest.approx(1.0)
    assert float(shading[30, 20]) == pytest.approx(200.0 / 210.0)


def _flat(colour: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(colour).view(3, 1, 1).expand(3, 48, 48).clone()


def test_light_neutral_garments_are_light_and_grey():
    # on a background of 240, light is at least 0.75 x 240 = 180 in the brightest channel, and
    # neutral is a mean colour whose channels differ by less than 5 % of the largest
    garments = [
        (200.0, 200.0, 196.0),  # light, 2 % apart: light and neutral
        (200.0, 170.0, 170.0),  # light, 15 % apart: a pale pink, not neutral
        (120.0, 120.0, 120.0),  # grey but dark
    ]
    rgb = torch.cat([_image(_flat(c), back=240.0) for c in garments])
    empty = torch.full((1, 3, 64, 64), 240.0)
    assert light_neutral(torch.cat([rgb, empty])).tolist() == [True, False, False, False]


@pytest.mark.parametrize(
    "body, masked", [((200.0, 200.0, 200.0), True), ((200.0, 170.0, 170.0), False)]
)
def test_a_light_neutral_garment_keeps_its_parts_close_to_the_background(body, masked):
    # rows 8-39 of the garment are ``body``, rows 40-55 a hem of 232 on a background of 240:
    # 8 from it, under the mask threshold of 15 but over the light, neutral garment's 4. The
    # white garment keeps its hem (rows 40-54 once the outline is eroded), which reads
    # 232 / 232 = 1 and its body 200 / 232; the pale pink one loses the hem, as the window's
    # maximum does, and its body reads 1.
    garment = _flat(body)
    garment[:, 32:] = 232.0
    rgb = _image(garment, back=240.0)
    shading = pixel_shading(rgb)[0, 0]
    assert not shaded_silhouette(rgb)[0, 0, 40:].any()
    if masked:
        assert float(shading[40:55, 9:55].min()) == pytest.approx(1.0)
        assert float(shading[9:40, 9:55].max()) == pytest.approx(200.0 / 232.0)
        assert float(shading[55:].abs().max()) == 0.0
    else:
        assert not shading[40:].any()
        assert float(shading[9:39, 9:55].min()) == pytest.approx(1.0)
