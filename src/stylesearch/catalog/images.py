"""Safe image opening: refuse missing, non-image, truncated, corrupt and oversized images.

Every image that enters stylesearch (catalog rows, training batches, query uploads) goes through
:func:`check_image` or :func:`load_image`. Both read the header first, refuse an image whose
``width * height`` exceeds ``max_pixels`` *before* decoding a single pixel (a decompression bomb:
a few kilobytes of PNG can claim 20000 x 20000 pixels), and only then decode fully, so truncated or
corrupt data is caught here rather than in the middle of a training epoch.

The pixel limit is ours alone: Pillow's own process-wide ``PIL.Image.MAX_IMAGE_PIXELS`` is neither
relied on nor changed. Whatever it is set to, Pillow's ``DecompressionBombWarning`` /
``DecompressionBombError`` never escape from these functions.

Known limit: ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` (set by some other library) makes
Pillow pad truncated images silently; we do not override that global either.
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from stylesearch.errors import StylesearchError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_ASPECT_RATIO",
    "ImageError",
    "ImageTooLargeError",
    "NotAnImageError",
    "check_image",
    "load_image",
]

#: Default refusal threshold in pixels (width * height); 50 Mpx is an 8660 x 5774 photo.
DEFAULT_MAX_PIXELS: int = 50_000_000
#: Longest accepted side over shortest side. A 25,000,000 x 1 image is under any pixel limit,
#: but resizing its short side to the model's input would need gigabytes.
MAX_ASPECT_RATIO: float = 20.0
#: Bytes per pixel that decoding an image and shrinking it hold at their peak, by mode: Pillow's
#: buffer (1, 2 or 4 bytes), twice over for modes with alpha, whose resize premultiplies into a
#: second full-size buffer. Modes not listed take 4.
_DECODE_COST = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_DECODE_COST |= dict.fromkeys(("LA", "La", "PA", "RGBA", "RGBa"), 8)

# ``warnings.catch_warnings`` swaps a process-wide filter list and is not thread-safe: two
# overlapping contexts in different threads can leave a filter installed for good. Our header
# reads are short, so serialising them is cheap and keeps the filter list intact.
_OPEN_LOCK = threading.Lock()
_BOMB_EXCEPTIONS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


class ImageError(StylesearchError, ValueError):
    """An image that cannot be used; the message is the user-readable reason.

    Reasons start with a fixed phrase (``image not found``, ``not an image (unrecognised
    format)``, ``truncated or corrupt image``, ``image too large``, ``image too elongated``,
    ``cannot read image``) followed by ``": "`` and the details. Two kinds have their own
    subclass, so that callers tell them apart by type (the server answers them with their own
    status and code): :class:`NotAnImageError` and :class:`ImageTooLargeError`; the others are
    this class itself.
    """


class NotAnImageError(ImageError):
    """Data that no image format recognises (or none at all): ``not an image ...``."""


class ImageTooLargeError(ImageError):
    """An image over a pixel or memory limit, refused before or while decoding:
    ``image too large ...``."""


def _too_large(width: int, height: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"image too large: {width} x {height} = {width * height} pixels > limit {max_pixels}"
    )


def _open_unchecked(fp: IO[bytes], filename: str) -> ImageFile.ImageFile | None:
    """Identify ``fp`` with Pillow's registered format openers, skipping its global pixel check.

    Used only after ``Image.open`` refused the image for exceeding Pillow's own limit, so that
    we can report the real dimensions and apply *our* limit. Returns ``None`` when no opener
    accepts the data (some openers run the global check themselves and may still raise).
    """
    Image.init()
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        accepted = not accept or accept(prefix)
        if not accepted or isinstance(accepted, str):
            continue
        fp.seek(0)
        try:
            return factory(fp, filename)
        except (SyntaxError, IndexError, TypeError, ValueError, OSError):
            continue
    return None


def _identify(fp: IO[bytes], label: str) -> ImageFile.ImageFile:
    """Lazily open ``fp`` (header only) whatever Pillow's global pixel limit says."""
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp)
    except UnidentifiedImageError:
        raise NotAnImageError(f"not an image (unrecognised format): {label}") from None
    except Image.DecompressionBombError as exc:
        bomb = exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"truncated or corrupt image: {label} ({exc})") from None
    # Pillow's process-wide limit is lower than the image: find the size ourselves.
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = _open_unchecked(fp, label)
    except _BOMB_EXCEPTIONS:
        image = None
    if image is None:
        match = re.search(r"\((\d+) pixels\)", str(bomb))
        pixels = match.group(1) if match else "too many"
        raise ImageTooLargeError(
            f"image too large: {label}: {pixels} pixels "
            f"(refused by Pillow's MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS})"
        )
    return image


def _open_header(fp: IO[bytes], label: str, max_pixels: int) -> ImageFile.ImageFile:
    """Lazily open ``fp`` (header only) and enforce ``max_pixels``; nothing is decoded yet."""
    image = _identify(fp, label)
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise ImageError(f"truncated or corrupt image: {label} (size {width} x {height})")
    if width * height > max_pixels:
        image.close()
        raise _too_large(width, height, max_pixels)
    try:
        _check_aspect(width, height, label)
    except ImageError:
        image.close()
        raise
    return image


def _check_aspect(width: int, height: int, label: str) -> None:
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageError(
            f"image too elongated: {label}: {width} x {height} (the longer side may be at most"
            f" {MAX_ASPECT_RATIO:g} times the shorter)"
        )


def decode_cost(image: Image.Image) -> int:
    """The bytes that decoding ``image`` and shrinking it hold at their peak (an estimate)."""
    width, height = image.size
    return width * height * _DECODE_COST.get(image.mode, 4)


def _draft(image: ImageFile.ImageFile, shrink_to: int) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale, its shorter side staying >= ``shrink_to``."""
    if image.format == "JPEG":
        image.draft(image.mode, (shrink_to, shrink_to))


def _shrink(image: Image.Image, shrink_to: int) -> Image.Image:
    """Box-average ``image`` by the largest integer factor that keeps its shorter side at least
    ``shrink_to`` (``image`` itself when that factor is 1)."""
    factor = min(image.size) // shrink_to
    if factor < 2:
        return image
    width, height = image.size
    # sizes rounded up: a shape within MAX_ASPECT_RATIO stays within it
    return image.resize((-(-width // factor), -(-height // factor)), Image.Resampling.BOX)


def _decode(image: ImageFile.ImageFile, label: str) -> None:
    """Decode every pixel of ``image`` (``Image.load``); corrupt or truncated data raises."""
    try:
        image.load()
    except _BOMB_EXCEPTIONS as exc:
        raise ImageTooLargeError(f"image too large: {label} ({exc})") from None
    except MemoryError:
        raise ImageTooLargeError(
            f"image too large: {label} (out of memory while decoding)"
        ) from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error, ...
        detail = str(exc) or type(exc).__name__
        raise ImageError(f"truncated or corrupt image: {label} ({detail})") from None


def _open_path(path: Path) -> IO[bytes]:
    try:
        if not path.is_dir() and path.exists() and not path.is_file():  # opening a FIFO blocks
            raise ImageError(f"cannot read image: {path} (not a regular file)")
        return open(path, "rb")  # noqa: SIM115 -- closed by the caller's ``with``
    except FileNotFoundError:
        raise ImageError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise ImageError(f"cannot read image: {path} (is a directory)") from None
    except OSError as exc:
        raise ImageError(f"cannot read image: {path} ({exc.strerror or exc})") from None


def check_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Validate the image file at ``path`` and return its ``(width, height)`` in pixels.

    The header is read first and an image with ``width * height > max_pixels`` is refused
    without being decoded; otherwise every pixel is decoded once to catch truncated or corrupt
    data, then discarded.

    Raises:
        ImageError: with a user-readable reason, e.g. ``"image not found: <path>"``,
            ``"not an image (unrecognised format): <path>"``,
            ``"truncated or corrupt image: <path> (<detail>)"`` or
            ``"image too large: 20000 x 20000 = 400000000 pixels > limit 50000000"``.
    """
    path = Path(path)
    with _open_path(path) as fp:
        image = _open_header(fp, str(path), max_pixels)
        with image:
            _decode(image, str(path))
            return image.size


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency is composited on white.

    16-bit and 32-bit greyscale (``I;16``, ``I``, ``F``) are rescaled to 8 bits rather than
    clipped. Returns a new image (never the argument itself).
    """
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode.startswith("I") or mode == "F":
        values = np.array(image, dtype=np.float32)
        top = float(values.max()) if values.size else 0.0
        if top > 255.0:
            scale = 65535.0 if mode.startswith("I;16") or top <= 65535.0 else top
            values *= np.float32(255.0 / scale)
        np.clip(values, 0, 255, out=values)
        grey = Image.fromarray(values.round().astype(np.uint8), mode="L")
        return grey.convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, if any (returns ``image`` itself when there is none)."""
    if image.getexif().get(0x0112, 1) in (None, 1):
        return image
    return ImageOps.exif_transpose(image)


def load_image(
    source: str | os.PathLike[str] | bytes | Image.Image,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    shrink_to: int | None = None,
    max_decode_bytes: int | None = None,
) -> Image.Image:
    """Open, validate and decode an image from a path, raw file bytes or a Pillow image.

    The same checks as :func:`check_image` apply (header first, ``max_pixels`` and the aspect
    ratio before any decoding, full decode). The EXIF orientation tag is applied, so phone
    photos stand upright.

    Args:
        source: a file path, the bytes of an encoded image (an HTTP upload), or an already
            opened ``PIL.Image.Image`` (only its size is checked; it is not modified).
        max_pixels: refuse images with more than this many pixels (width * height).
        shrink_to: the shorter side the caller needs (the model's input size). A JPEG is then
            decoded at the smallest scale that keeps it (1/2, 1/4 or 1/8), and any image is
            box-averaged by an integer factor down to no less than it *before* the conversion
            to RGB, so a large image never exists at full size in RGB.
        max_decode_bytes: refuse an image whose decoding and shrinking would hold more than
            this many bytes (:func:`decode_cost`, after the JPEG scaling above), before
            decoding it: a server's bound on the memory of one upload.

    Returns:
        A new, fully loaded ``PIL.Image.Image`` in mode ``"RGB"`` (8 bits per channel,
        shape ``(H, W, 3)`` as an array). Transparent pixels are composited on white.

    Raises:
        ImageError: the image cannot be used; the message says why.
    """
    if isinstance(source, Image.Image):
        width, height = source.size
        if width * height > max_pixels:
            raise _too_large(width, height, max_pixels)
        label = "<image>"
        _check_aspect(width, height, label)
        try:
            small = source if shrink_to is None else _shrink(source, shrink_to)
            return _to_rgb(_upright(small))
        except Exception as exc:
            raise ImageError(f"truncated or corrupt image: {label} ({exc})") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = f"<{len(source)} bytes>"
        if len(source) == 0:
            raise NotAnImageError(f"not an image (unrecognised format): {label} (empty)")
        handle: IO[bytes] = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        label = str(source)
        handle = _open_path(Path(source))
    else:
        raise TypeError(f"load_image expects a path, bytes or PIL image, not {type(source)!r}")
    with handle:
        image = _open_header(handle, label, max_pixels)
        with image:
            if shrink_to is not None:
                _draft(image, shrink_to)
            if max_decode_bytes is not None and decode_cost(image) > max_decode_bytes:
                width, height = image.size
                raise ImageTooLargeError(
                    f"image too large: {label}: decoding {width} x {height} in mode {image.mode}"
                    f" needs {decode_cost(image)} bytes > limit {max_decode_bytes}"
                )
            _decode(image, label)
            try:
                small = image if shrink_to is None else _shrink(image, shrink_to)
                return _to_rgb(_upright(small))
            except Exception as exc:
                raise ImageError(f"truncated or corrupt image: {label} ({exc})") from None
