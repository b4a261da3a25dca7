"""The shape judge's vectors: each item's uncoloured source image, from the truth file.

A catalog built by ``stylesearch catalog build-demo`` records in ``truth.jsonl`` which
Fashion-MNIST image every item was drawn from (``source``: ``train`` or ``t10k``;
``source_index``). That 28 x 28 greyscale garment carries the silhouette and none of the colour
or pattern the builder painted on it. The judge's relevance is the cosine of two items' source
pixels, each centred on the mean of its split (:func:`stylesearch.evaluation.metrics.
centred_unit_rows`), clipped at 0.

The Fashion-MNIST folder is the one the catalog was built from (``build.json`` beside the truth
file), unless the caller names another.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylesearch.catalog.fashion_mnist import DEFAULT_SOURCE, load_set
from stylesearch.evaluation.metrics import centred_unit_rows

__all__ = ["ShapeVectors", "load_shape_vectors", "source_folder"]


@dataclass(frozen=True)
class _Source:
    split: str
    source: str
    index: int


@dataclass(frozen=True)
class ShapeVectors:
    """Unit, centred source-pixel vectors of the base rows and of the query items."""

    base: np.ndarray  # (N, P) float64
    queries: np.ndarray  # (Q, P) float64, in the order of the query ids given


def _read_sources(truth_path: Path) -> dict[str, _Source]:
    sources: dict[str, _Source] = {}
    for line in truth_path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        src, idx = row.get("source"), row.get("source_index")
        if isinstance(src, str) and isinstance(idx, int) and not isinstance(idx, bool):
            sources[row["id"]] = _Source(str(row.get("split", "")), src, idx)
    return sources


def source_folder(truth_path: str | Path) -> Path:
    """The Fashion-MNIST folder recorded in ``build.json`` beside the truth file, else the
    Debian package's."""
    build = Path(truth_path).with_name("build.json")
    if build.is_file():
        source = json.loads(build.read_text()).get("config", {}).get("source")
        if isinstance(source, str):
            return Path(source)
    return DEFAULT_SOURCE


def load_shape_vectors(
    truth_path: str | Path,
    base_ids: Sequence[str],
    query_ids: Sequence[str],
    *,
    source_dir: str | Path | None = None,
) -> ShapeVectors | None:
    """The judge's vectors, or ``None`` when the truth does not name every item's source.

    Raises:
        stylesearch.catalog.fashion_mnist.DemoSourceMissing: the source images are not there
            (the message says how to install them).
    """
    truth_path = Path(truth_path)
    sources = _read_sources(truth_path)
    if not sources or any(i not in sources for i in (*base_ids, *query_ids)):
        return None
    folder = Path(source_dir) if source_dir is not None else source_folder(truth_path)
    names = sorted({s.source for s in sources.values()})
    sets = {name: load_set(folder, name)[0] for name in names}

    def pixels(ids: Sequence[str] | list[str]) -> np.ndarray:
        return np.stack(
            [sets[sources[i].source][sources[i].index].reshape(-1) for i in ids]
        ).astype(np.float64)

    # each split's mean over all of its items in the truth file, not only the ones evaluated,
    # so the same item gets the same vector whichever queries are run
    by_split: dict[str, list[str]] = {}
    for item_id, s in sources.items():
        by_split.setdefault(s.split, []).append(item_id)
    means = {split: pixels(ids).mean(axis=0) for split, ids in by_split.items()}

    def vectors(ids: Sequence[str]) -> np.ndarray:
        if not ids:
            return np.zeros((0, next(iter(means.values())).size))
        out = np.empty((len(ids), next(iter(means.values())).size))
        for split in {sources[i].split for i in ids}:
            rows = [j for j, i in enumerate(ids) if sources[i].split == split]
            out[rows] = centred_unit_rows(pixels([ids[j] for j in rows]), means[split])
        return out

    return ShapeVectors(vectors(base_ids), vectors(query_ids))
