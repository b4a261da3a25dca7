"""One real demo-catalog build from the Debian package ``dataset-fashion-mnist``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from stylesearch.catalog.demo import (
    CATEGORIES,
    COLOURS,
    DEFAULT_SOURCE,
    PATTERNS,
    SPLITS,
    DemoConfig,
    build_demo_catalog,
)
from stylesearch.catalog.manifest import load_catalog

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DEFAULT_SOURCE / "train-images-idx3-ubyte.gz").is_file(),
        reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
    ),
]


def test_real_small_build(tmp_path: Path) -> None:
    cfg = DemoConfig(items=600, base_items=400, query_items=100)
    built = build_demo_catalog(tmp_path / "demo", cfg, progress=False)
    assert built.counts["train"] == 600 and built.counts["images"] == 1100 * 2
    assert built.seconds < 60

    for split in SPLITS:
        catalog = load_catalog(built.manifest(split))
        assert len(catalog.rejected) == 0, catalog.rejected[:3]
        assert all(len(item.all_images) >= 2 for item in catalog.items)
        with Image.open(catalog.items[0].image) as img:
            assert img.mode == "RGB" and img.size == (64, 64)

    truth = [json.loads(line) for line in built.truth.read_text().splitlines()]
    train = [t for t in truth if t["split"] == "train"]
    assert set(Counter(t["category"] for t in train)) == set(CATEGORIES)
    assert set(Counter(t["colour"] for t in train)) == set(COLOURS)
    assert set(Counter(t["pattern"] for t in train)) == set(PATTERNS)
    sources = {
        s: {(t["source"], t["source_index"]) for t in truth if t["split"] == s} for s in SPLITS
    }
    assert not sources["train"] & sources["base"]
    assert {s for s, _ in sources["query"]} == {"t10k"}
    noisy = sum(t["noise"] is not None for t in train) / len(train)
    assert 0.12 < noisy < 0.28  # missing 15% + wrong 5%

    again = build_demo_catalog(tmp_path / "demo", cfg, progress=False)
    assert again.reused and again.seconds < 5
