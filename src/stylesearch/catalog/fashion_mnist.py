"""Read Fashion-MNIST (Zalando, MIT licence) from its IDX files.

The Debian package ``dataset-fashion-mnist`` installs the four files under
``/usr/share/datasets/fashion-mnist/``::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz   (60,000 images)
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz    (10,000 images)

Uncompressed copies (the same names without ``.gz``) are accepted too.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from stylesearch.errors import StylesearchError

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")

#: the two source sets and the file stems of their images and labels.
SETS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: the 10 Fashion-MNIST class names, in label order.
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


class DemoSourceMissing(StylesearchError, FileNotFoundError):
    """The Fashion-MNIST files are not where the demo builder looks for them."""


class DemoSourceError(StylesearchError, ValueError):
    """Fashion-MNIST files that are there but cannot be read (truncated, not IDX, mismatched)."""


def _find(source: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        path = source / name
        if path.is_file():
            return path
    return None


def source_files(source: str | Path) -> dict[str, Path]:
    """The four IDX files under ``source`` by stem; raise DemoSourceMissing with a fix."""
    source = Path(source)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for stems in SETS.values():
        for stem in stems:
            path = _find(source, stem)
            if path is None:
                missing.append(stem + ".gz")
            else:
                found[stem] = path
    if missing:
        where = "does not exist" if not source.exists() else "lacks " + ", ".join(missing)
        raise DemoSourceMissing(
            f"Fashion-MNIST not found: {source} {where}. Install it with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu; it goes to "
            f"{DEFAULT_SOURCE}), or pass --source FOLDER holding train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
            "(the files from github.com/zalandoresearch/fashion-mnist)."
        )
    return found


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (gzipped or not) into an array of its declared shape and dtype."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise DemoSourceError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DemoSourceError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    count = int(np.prod(shape)) if shape else 1
    if len(data) - header != count * dtype.itemsize:
        raise DemoSourceError(
            f"{path}: IDX payload is {len(data) - header} bytes, shape {shape} needs "
            f"{count * dtype.itemsize}"
        )
    return np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)


def load_set(source: str | Path, which: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28) uint8`` and labels ``(N,) uint8`` of set ``which`` (train/t10k)."""
    if which not in SETS:
        raise ValueError(f"unknown Fashion-MNIST set {which!r}; choose one of {sorted(SETS)}")
    files = source_files(source)
    img_stem, lab_stem = SETS[which]
    images = read_idx(files[img_stem])
    labels = read_idx(files[lab_stem])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DemoSourceError(
            f"{source}: {which} images {images.shape} and labels {labels.shape} do not match"
        )
    if labels.size and int(labels.max()) >= len(CLASS_NAMES):
        raise DemoSourceError(f"{source}: {which} labels outside 0..{len(CLASS_NAMES) - 1}")
    return np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.uint8)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in ``.gz``).

    Used by tests to make small fake Fashion-MNIST sets.
    """
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    payload = header + array.tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload, mtime=0))
    else:
        path.write_bytes(payload)
