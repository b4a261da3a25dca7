"""The generated shapes catalog: deterministic, valid, and its words match its pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylesearch.catalog.manifest import load_catalog
from stylesearch.catalog.synthetic import COLOURS, PATTERNS, SHAPES, make_shapes_catalog


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.*"))}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shapes_catalog(tmp_path_factory.mktemp("shapes"), 60, seed=3, image_size=32)


def test_vocabulary_sizes() -> None:
    assert (
        len(SHAPES) >= 6 and len(COLOURS) >= 8 and set(PATTERNS) == {"solid", "striped", "dotted"}
    )


def test_same_seed_same_bytes(tmp_path: Path, shapes: Path) -> None:
    again = make_shapes_catalog(tmp_path / "again", 60, seed=3, image_size=32)
    assert again.name == "manifest.jsonl"
    first, second = _files(shapes.parent), _files(again.parent)
    assert len(first) == 2 + 2 * 60
    assert first == second
    other = make_shapes_catalog(tmp_path / "other", 60, seed=4, image_size=32)
    assert other.read_bytes() != shapes.read_bytes()


def test_load_catalog_accepts_every_row(shapes: Path) -> None:
    catalog = load_catalog(shapes)
    assert catalog.rows_in == 60 and len(catalog.items) == 60 and not catalog.rejected
    truth = _jsonl(shapes.parent / "truth.jsonl")
    assert [t["id"] for t in truth] == [item.id for item in catalog.items]
    assert all(set(t) == {"id", "shape", "colour", "pattern"} for t in truth)
    assert all(len(item.extra_images) == 1 for item in catalog.items)
    with Image.open(catalog.items[0].image) as image:
        assert image.size == (32, 32) and image.mode == "RGB"


def test_pixels_show_the_true_colour(shapes: Path) -> None:
    palette = {name: np.array(rgb, dtype=float) for name, rgb in COLOURS.items()}
    for t in _jsonl(shapes.parent / "truth.jsonl")[:30]:
        for suffix in ("", "-b"):
            pixels = np.asarray(Image.open(shapes.parent / f"images/{t['id']}{suffix}.png"), float)
            corner = pixels[0, 0]
            distance = np.abs(pixels - corner).sum(axis=-1).ravel()
            assert (distance > 120).sum() > 20, t
            # the pixels farthest from the background: the shape's own colour, not the white
            # of its stripes or dots nor antialiased edges
            far = pixels.reshape(-1, 3)[np.argsort(distance)[-20:]]
            centre = np.median(far, axis=0)
            nearest = min(palette, key=lambda name: np.abs(palette[name] - centre).sum())
            assert nearest == t["colour"], (t, centre)


def _words(row: dict) -> set[str]:
    text = f"{row['title']} {row['description']}".lower()
    return set(text.replace(",", " ").replace(".", " ").split())


def test_clean_titles_name_every_attribute(tmp_path: Path) -> None:
    manifest = make_shapes_catalog(tmp_path, 40, image_size=16, missing_rate=0.0, wrong_rate=0.0)
    rows, truth = _jsonl(manifest), _jsonl(tmp_path / "truth.jsonl")
    for row, t in zip(rows, truth, strict=True):
        title = _words({"title": row["title"], "description": ""})
        assert {t["colour"], t["pattern"], t["shape"]} <= title, row["title"]
        assert not (title & set(COLOURS)) - {t["colour"]}
        groups = {"colour": set(COLOURS), "pattern": set(PATTERNS), "shape": set(SHAPES)}
        for key, group in groups.items():  # the description never contradicts the truth
            assert _words(row) & group <= {t[key]}, row


def test_noise_rates(tmp_path: Path) -> None:
    missing = make_shapes_catalog(tmp_path / "m", 30, image_size=16, missing_rate=1.0)
    for row, t in zip(_jsonl(missing), _jsonl(tmp_path / "m/truth.jsonl"), strict=True):
        named = {t["colour"], t["pattern"], t["shape"]} & _words(row)
        assert len(named) == 2, row
    wrong = make_shapes_catalog(tmp_path / "w", 30, image_size=16, missing_rate=0.0, wrong_rate=1.0)
    for row, t in zip(_jsonl(wrong), _jsonl(tmp_path / "w/truth.jsonl"), strict=True):
        colours = _words(row) & set(COLOURS)
        assert len(colours) == 1 and t["colour"] not in colours, row
    default = _jsonl(make_shapes_catalog(tmp_path / "d", 200, image_size=8))
    truth = _jsonl(tmp_path / "d/truth.jsonl")
    noisy = sum(t["colour"] not in _words(row) for row, t in zip(default, truth, strict=True))
    assert 5 <= noisy <= 40  # ~10 % missing (a third of them the colour) + ~5 % wrong colour


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        make_shapes_catalog(tmp_path, 0)
    with pytest.raises(ValueError):
        make_shapes_catalog(tmp_path, 5, missing_rate=1.5)
