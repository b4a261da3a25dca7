"""check_image / load_image: every kind of unusable image is refused with a readable reason."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from stylesearch.catalog.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    check_image,
    load_image,
)


def _chunk(tag: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(tag + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)


def bomb_png(width: int, height: int) -> bytes:
    """A 60-byte PNG whose header claims ``width`` x ``height`` RGB pixels (no real data)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


def noise_image(size: tuple[int, int] = (48, 32), seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, mode="RGB")


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any pixel decoding fail loudly: a refusal must come from the header alone."""

    def forbidden(self: Image.Image) -> None:
        raise AssertionError("image data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", forbidden)
    monkeypatch.setattr(Image.Image, "load", forbidden)


def test_valid_png_and_jpeg_return_width_height(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(encoded(noise_image((48, 32))))
    jpg = tmp_path / "a.jpg"
    jpg.write_bytes(encoded(noise_image((20, 30)), "JPEG"))
    assert check_image(png) == (48, 32)
    assert check_image(jpg) == (20, 30)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(ImageError, match=r"^image not found: .*nope\.png$"):
        check_image(path)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"^cannot read image: .*is a directory"):
        check_image(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, I am text\n", b"\x89PNG\r\n\x1a\n"])
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=r"^not an image \(unrecognised format\): .*fake\.png"):
        check_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image(tmp_path: Path, fmt: str) -> None:
    data = encoded(noise_image((64, 64)), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageError, match=r"^truncated or corrupt image: .*cut\.\w+ \(.+\)$"):
        check_image(path)


def test_corrupt_png_data(tmp_path: Path) -> None:
    data = bytearray(encoded(noise_image((64, 64))))
    start = data.index(b"IDAT") + 40
    data[start : start + 64] = bytes(64)  # zero a run of compressed bytes: CRC / zlib failure
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"^truncated or corrupt image: "):
        check_image(path)


def test_decompression_bomb_refused_from_header_alone(tmp_path: Path, no_decoding: None) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(20000, 20000))
    assert path.stat().st_size < 100
    expected = "image too large: 20000 x 20000 = 400000000 pixels > limit 50000000"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may escape either
        with pytest.raises(ImageError) as info:
            check_image(path)
        assert str(info.value) == expected
        with pytest.raises(ImageError, match="^image too large: 20000 x 20000"):
            load_image(path.read_bytes())


@pytest.mark.parametrize("side", [12000, 8000])
def test_bomb_between_pillow_limits_is_refused_without_warning(
    tmp_path: Path, no_decoding: None, side: int
) -> None:
    # 144 Mpx is above Pillow's warning threshold but below its error threshold; 64 Mpx is
    # below both: only our limit refuses it.
    path = tmp_path / "big.png"
    path.write_bytes(bomb_png(side, side))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageError, match=rf"^image too large: {side} x {side} = "):
            check_image(path)


def test_own_limit_does_not_depend_on_pillow_global(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png(20000, 20000))
    small = tmp_path / "small.png"
    small.write_bytes(encoded(noise_image((64, 64))))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # someone disabled Pillow's check
    with pytest.raises(ImageError, match="20000 x 20000"):
        check_image(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # someone made it tiny
    assert check_image(small) == (64, 64)
    with pytest.raises(ImageError, match="20000 x 20000 = 400000000 pixels > limit 50000000"):
        check_image(bomb)


def test_pillow_refusal_without_dimensions_is_still_an_image_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stylesearch.catalog import images

    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(20000, 20000))
    monkeypatch.setattr(images, "_open_unchecked", lambda fp, label: None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match=r"^image too large: .*bomb\.png: 400000000 pixels \("):
        check_image(path)


def test_pillow_global_is_left_alone(tmp_path: Path) -> None:
    before = Image.MAX_IMAGE_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(20000, 20000))
    with pytest.raises(ImageError):
        check_image(path)
    assert before == Image.MAX_IMAGE_PIXELS


def test_max_pixels_argument(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(encoded(noise_image((64, 64))))
    assert check_image(path, max_pixels=64 * 64) == (64, 64)
    with pytest.raises(ImageError, match="64 x 64 = 4096 pixels > limit 4095"):
        check_image(path, max_pixels=4095)
    with pytest.raises(ImageError, match="limit 4095"):
        load_image(path, max_pixels=4095)
    assert DEFAULT_MAX_PIXELS == 50_000_000


def test_load_image_from_path_str_and_bytes(tmp_path: Path) -> None:
    original = noise_image((40, 30))
    path = tmp_path / "x.png"
    path.write_bytes(encoded(original))
    for source in (path, str(path), path.read_bytes()):
        image = load_image(source)
        assert image.mode == "RGB" and image.size == (40, 30)
        assert np.array_equal(np.asarray(image), np.asarray(original))


def test_load_image_bad_bytes() -> None:
    with pytest.raises(ImageError, match=r"^not an image \(unrecognised format\): <0 bytes>"):
        load_image(b"")
    with pytest.raises(ImageError, match=r"^not an image \(unrecognised format\): <5 bytes>"):
        load_image(b"hello")
    data = encoded(noise_image((64, 64)))
    with pytest.raises(ImageError, match="^truncated or corrupt image"):
        load_image(data[: len(data) // 2])


def test_load_image_rgba_is_composited_on_white() -> None:
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))  # one opaque blue pixel
    out = load_image(rgba)
    assert out.mode == "RGB"
    assert out.getpixel((1, 1)) == (255, 255, 255)
    assert out.getpixel((0, 0)) == (0, 0, 255)
    assert rgba.mode == "RGBA"  # the argument is not modified
    assert load_image(encoded(rgba)).getpixel((1, 1)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("L", (3, 3), 77), (77, 77, 77)),
        (Image.new("1", (3, 3), 1), (255, 255, 255)),
        (Image.new("LA", (3, 3), (0, 0)), (255, 255, 255)),
        (Image.new("CMYK", (3, 3), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("I;16", (3, 3), 65535), (255, 255, 255)),
        (Image.new("I", (3, 3), 200), (200, 200, 200)),
    ],
)
def test_load_image_converts_modes(image: Image.Image, expected: tuple[int, int, int]) -> None:
    out = load_image(image)
    assert out.mode == "RGB"
    assert out.getpixel((1, 1)) == expected


def test_load_image_palette_with_transparency() -> None:
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([0, 255, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    palette.info["transparency"] = 0
    out = load_image(encoded(palette))
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_load_image_pil_too_large_and_wrong_type() -> None:
    with pytest.raises(ImageError, match="^image too large: 10 x 10 = 100 pixels > limit 99"):
        load_image(Image.new("RGB", (10, 10)), max_pixels=99)
    with pytest.raises(TypeError):
        load_image(123)  # type: ignore[arg-type]


def test_load_image_applies_exif_orientation() -> None:
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert load_image(buffer.getvalue()).size == (20, 40)


@pytest.mark.parametrize(("width", "height"), [(25_000_000, 1), (1_000_000, 25), (20, 420)])
def test_elongated_images_are_refused_from_the_header(
    tmp_path: Path, no_decoding: None, width: int, height: int
) -> None:
    path = tmp_path / "long.png"
    path.write_bytes(bomb_png(width, height))  # under the pixel limit; a resize would explode
    message = f"^image too elongated: .*{width} x {height} \\(the longer side may be at most 20"
    with pytest.raises(ImageError, match=message):
        check_image(path)
    with pytest.raises(ImageError, match=message):
        load_image(path.read_bytes())


def test_twenty_to_one_is_still_accepted_and_a_pil_image_is_checked_too() -> None:
    assert load_image(encoded(noise_image((400, 20)))).size == (400, 20)
    with pytest.raises(ImageError, match="^image too elongated: <image>: 420 x 20"):
        load_image(Image.new("L", (420, 20)))


@pytest.mark.parametrize(
    ("size", "shrink_to", "expected"),
    [
        ((1000, 700), 224, (334, 234)),  # 700 // 224 = 3; sizes rounded up
        ((700, 1000), 224, (234, 334)),
        ((999, 699), 224, (333, 233)),
        ((447, 600), 224, (447, 600)),  # factor 1: left as it is
        ((448, 600), 224, (224, 300)),
        ((100, 80), 224, (100, 80)),  # never enlarged
    ],
)
def test_shrink_to_box_averages_by_an_integer_factor(
    size: tuple[int, int], shrink_to: int, expected: tuple[int, int]
) -> None:
    image = noise_image(size)
    out = load_image(encoded(image), shrink_to=shrink_to)
    assert out.size == expected
    factor = min(size) // shrink_to
    exact = factor > 1 and size[0] % factor == 0 and size[1] % factor == 0
    if exact:  # one output pixel is the mean of a factor x factor block
        block = np.asarray(image)[:factor, :factor].reshape(-1, 3).mean(axis=0)
        assert np.abs(np.asarray(out)[0, 0] - block).max() <= 1
    assert load_image(image, shrink_to=shrink_to).size == expected  # a PIL image alike


def test_shrink_keeps_an_accepted_aspect_ratio_accepted() -> None:
    image = Image.new("RGB", (15_480, 774))  # 20:1 exactly; 774 / 12 = 64.5
    assert load_image(encoded(image), shrink_to=64).size == (1290, 65)


def test_shrink_to_decodes_a_large_jpeg_at_a_smaller_scale() -> None:
    data = encoded(noise_image((2000, 1800)), "JPEG")
    out = load_image(data, shrink_to=224)
    assert out.size == (250, 225)  # drafted at 1/8 (250 x 225), short side still >= 224
    assert load_image(data).size == (2000, 1800)


def test_shrunk_modes_keep_their_values() -> None:
    grey16 = Image.new("I;16", (900, 900), 65535)
    assert load_image(encoded(grey16), shrink_to=224).getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (900, 900), 1)
    palette.putpalette([0, 0, 0, 250, 10, 20] + [0] * (256 * 3 - 6))
    assert load_image(encoded(palette), shrink_to=224).getpixel((5, 5)) == (250, 10, 20)
    rgba = Image.new("RGBA", (900, 900), (0, 0, 255, 0))
    assert load_image(encoded(rgba), shrink_to=224).getpixel((5, 5)) == (255, 255, 255)


@pytest.mark.parametrize(
    ("mode", "cost"), [("L", 1), ("P", 1), ("I;16", 2), ("RGB", 4), ("F", 4), ("RGBA", 8)]
)
def test_max_decode_bytes_is_checked_before_decoding(
    mode: str, cost: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encoded(Image.new(mode, (100, 50)), "TIFF" if mode == "F" else "PNG")
    assert load_image(data, max_decode_bytes=100 * 50 * cost).size == (100, 50)
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    message = f"^image too large: .*100 x 50 in mode {mode} needs {100 * 50 * cost} bytes"
    with pytest.raises(ImageError, match=message):
        load_image(data, max_decode_bytes=100 * 50 * cost - 1)


def test_max_decode_bytes_counts_a_jpeg_at_its_drafted_scale() -> None:
    data = encoded(noise_image((2000, 1800)), "JPEG")
    with pytest.raises(ImageError, match="2000 x 1800 in mode RGB"):
        load_image(data, max_decode_bytes=1_000_000)
    assert load_image(data, shrink_to=224, max_decode_bytes=250 * 225 * 4).size == (250, 225)


def test_each_kind_of_unusable_image_has_its_type(tmp_path: Path) -> None:
    """Callers (the server's status codes) tell the kinds apart by type, never by message: the
    message's opening phrase and the class always agree."""
    data = encoded(noise_image((64, 64)))
    (tmp_path / "bomb.png").write_bytes(bomb_png(20000, 20000))
    cases = [
        (lambda: load_image(b""), NotAnImageError, "not an image"),
        (lambda: load_image(b"hello"), NotAnImageError, "not an image"),
        (lambda: check_image(tmp_path / "bomb.png"), ImageTooLargeError, "image too large"),
        (lambda: load_image(Image.new("RGB", (10, 10)), max_pixels=99), ImageTooLargeError,
         "image too large"),
        (lambda: load_image(data, max_decode_bytes=100), ImageTooLargeError, "image too large"),
        (lambda: load_image(data[: len(data) // 2]), ImageError, "truncated or corrupt image"),
        (lambda: load_image(Image.new("L", (420, 20))), ImageError, "image too elongated"),
        (lambda: check_image(tmp_path / "nope.png"), ImageError, "image not found"),
        (lambda: check_image(tmp_path), ImageError, "cannot read image"),
    ]  # fmt: skip
    for call, kind, phrase in cases:
        with pytest.raises(ImageError) as info:
            call()
        assert type(info.value) is kind and str(info.value).startswith(phrase), info.value


def test_a_dataset_reason_keeps_its_kind(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from stylesearch.catalog.dataset import _load

    path = tmp_path / "fake.png"
    path.write_bytes(b"hello")
    with pytest.raises(NotAnImageError, match="^item 3: not an image"):
        _load(path, lambda image: image, DEFAULT_MAX_PIXELS, "item 3")
